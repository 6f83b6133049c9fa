# The largest values of the integer columns of SQLite and PostgreSQL (small, plain, big).
COLUMN_LIMITS = {32767, 2147483647, 9223372036854775807}


def portable_integers(result, generator, request, public):
    """drf-spectacular hook: drop integer bounds that are only a column's range. They differ
    between SQLite and PostgreSQL, so they would make the schema depend on the database it was
    generated on; the API only ever returns stored values."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") == "integer" and prop.get("maximum") in COLUMN_LIMITS:
                for key in ("minimum", "maximum", "format"):
                    prop.pop(key, None)
    return result
