-- Columns that cost a fifth of the bytes per span and that no lookup needs
-- (issue 16: at most 100 bytes per span over all tables).
--
-- key_index_v2 repeated all the keys of a record on each of its rows (a span
-- with a customer, an order and a work order had three rows, each with all
-- three keys: 19.5 of its 62 bytes per span). A journey shows a record's
-- keys within the journey, which its rows of the journey's keys already
-- name; the span and event tables keep every record's keys once.
--
-- key_links_v2.seen_ns was written and never read (5 of its 15 bytes per
-- span, nanoseconds in no order); seen_at, its day partition, stays.
--
-- 18.16 drops a column by removing its files from each part; current
-- releases run it as a mutation. Either way no row is rewritten by hand.
ALTER TABLE key_index_v2 {{on_cluster}} DROP COLUMN record_key_types;
ALTER TABLE key_index_v2 {{on_cluster}} DROP COLUMN record_key_values;
ALTER TABLE key_links_v2 {{on_cluster}} DROP COLUMN seen_ns;
