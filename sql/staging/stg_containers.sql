-- model: stg_containers
-- grain: one row per container (source, container_id)
-- key: source, container_id
-- materialized: view
-- owner: esn-metrics
with source as (
    select * from lake_containers
)
select source, container_id, kind, visibility, member_count, owner_department, created_at
from source
