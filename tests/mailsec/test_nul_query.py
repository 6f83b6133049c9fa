"""A NUL character in a query parameter is a 400 before any view runs (PostgreSQL cannot
compare such a string: it was a 500 on a filtered list)."""

import pytest

from tests.conftest import client_for


@pytest.mark.parametrize(
    "path",
    [
        "/reports/?reporter=a%00b",
        "/reports/?q=%00",
        "/domains/?q=x%00",
        "/reports/?a%00=1",
    ],
)
def test_pages_refuse_nul_in_the_query(alice, path):
    response = client_for(alice).get(path)
    assert response.status_code == 400
    assert b"may not contain NUL" in response.content


def test_the_api_refuses_it_in_json(alice):
    response = client_for(alice).get("/api/v1/reports/tls/?domain=%C3%AB%00x")
    assert response.status_code == 400
    assert response.json() == {"detail": "Query parameters may not contain NUL characters."}


def test_a_nul_in_a_later_value_of_a_repeated_parameter_counts(alice):
    response = client_for(alice).get("/reports/?reporter=fine&reporter=a%00b")
    assert response.status_code == 400
