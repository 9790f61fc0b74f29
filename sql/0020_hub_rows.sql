-- A hub's journey in one range of the key index (issue 16: a customer with
-- 100 orders read the rows of its 301 keys, a granule of each in every
-- part of every day, where its own rows are one range).
--
-- The row of a hub key (a key of the coarsest type, `customer` by default)
-- names all the keys of its record (`carried_*`), so the customer's range
-- says which of its orders and work orders each of its records carries.
-- A record that carries no hub key (an ERP event naming only its work
-- order) gets a row under each hub its keys were linked to when it was
-- written (`linked = 1`, with its keys in `carried_*`), so it is in the
-- hub's range too; a key whose record found no hub then is written to
-- `orphan_keys`, and a lookup reads that key's own range as before
-- (store/src/query/hub_journey.rs says when a hub's range is whole).
-- Rows written before this migration name no keys: lookups read key by
-- key as before until retention has dropped those days (`hub_legacy_days`).
ALTER TABLE key_index_v2 {{on_cluster}} ADD COLUMN carried_types Array(String);
ALTER TABLE key_index_v2 {{on_cluster}} ADD COLUMN carried_values Array(String);
ALTER TABLE key_index_v2 {{on_cluster}} ADD COLUMN linked UInt8 DEFAULT 0;

CREATE TABLE IF NOT EXISTS orphan_keys {{on_cluster}} (
    key_type String,
    key_value String,
    day Date
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(key_type, key_value)}}
PARTITION BY day
ORDER BY (key_type, key_value)
SETTINGS index_granularity = 1024;

-- The days the key index held when this migration ran (filled once, by
-- `store::hubs::LEGACY_DAYS`): their rows name no keys. A hub's journey is
-- read from its own range only once retention has dropped them all.
CREATE TABLE IF NOT EXISTS hub_legacy_days {{on_cluster}} (
    day Date
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(day)}}
PARTITION BY day
ORDER BY day;
