"""A tiny dbt project (written under tmp_path) for the tests of the runner (pipelines.transform).

Layers as in sql/: a staging view, an internal table and a mart in the build schema, each in the schema
named by its var (schema_staging, schema_internal, schema_build), with dbt tests on the internal table.
The internal table reads the vars `start` (a date), `factor` and `max_n`, so a test sees them in the data.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FILES = {
    "dbt_project.yml": """
        name: tiny
        version: "1.0"
        config-version: 2
        profile: esn_metrics
        model-paths: ["models"]
        macro-paths: ["macros"]
        models:
          tiny:
            +materialized: table
        """,
    "macros/generate_schema_name.sql": """
        {% macro generate_schema_name(custom_schema_name, node) -%}
        {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
        {%- endmacro %}
        """,
    "models/stg_numbers.sql": """
        {{ config(materialized='view', schema=var('schema_staging')) }}
        select * from (values (1, 'a'), (2, 'b'), (3, 'c')) as t(n, label)
        """,
    "models/int_numbers.sql": """
        select n, label, cast('{{ var("start") }}' as date) as start_date, {{ var("factor", 1) }} * n as scaled
        from {{ ref('stg_numbers') }}
        where n <= {{ var("max_n", 3) }}
        """,
    "models/int_session.sql": """
        select current_setting('TimeZone') as tz
        """,
    "models/mart_numbers.sql": """
        {{ config(schema=var('schema_build')) }}
        select count(*) as n_rows, sum(scaled) as total, min(start_date) as start_date from {{ ref('int_numbers') }}
        """,
    "models/schema.yml": """
        version: 2
        models:
          - name: int_numbers
            description: the numbers, scaled
            columns:
              - name: n
                data_tests: [unique, not_null]
              - name: scaled
                data_tests:
                  - accepted_values:
                      arguments:
                        values: [1, 2, 3]
        """,
}

MODELS = ["stg_numbers", "int_numbers", "int_session", "mart_numbers"]
TESTS = ["unique_int_numbers_n", "not_null_int_numbers_n", "accepted_values_int_numbers_scaled__1__2__3"]


def write_project(root: Path, extra: dict[str, str] | None = None) -> Path:
    for rel, text in {**FILES, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")
