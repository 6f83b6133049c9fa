"""The compiled parts of mailsec: reports/parsing/records.pyx and reports/rows.pyx, the hot
path of aggregate report ingestion (see their docstrings).

Everything else is in pyproject.toml. It is built against the lxml installed beside it
(`pip install --no-build-isolation`, as the Makefile does), whose public C API it uses.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "reports.parsing.records",
                ["reports/parsing/records.pyx"],
                include_dirs=lxml.get_include(),
            ),
            Extension("reports.rows", ["reports/rows.pyx"]),
        ],
        compiler_directives={"language_level": 3},
    )
)
