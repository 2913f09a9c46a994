"""esn-metrics: measure enterprise social networks.

Everything the pipeline does lives in this package as plain functions that the CLI (`esn`) and the
Airflow DAGs in `dags/` both call. Nothing here needs a scheduler to run.
"""

__version__ = "0.1.0"
