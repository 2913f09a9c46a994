select person_key, segment_type, segment_value
from {{ ref('int_segment_membership') }}
where {{ esn_date('end_date') }} between valid_from and valid_to
