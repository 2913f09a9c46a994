with source as (
    select * from {{ source('lake', 'lake_containers') }}
)
select source, container_id, kind, visibility, member_count, owner_department, created_at
from source
