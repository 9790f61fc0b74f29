-- What the journey of a key shows of each record, so that the console draws
-- it from the key index alone (ordered by key) and never reads the span or
-- event table for it: a span's duration, an event's outcome and attempt.
-- Rows written before this migration read 0 and ''.
ALTER TABLE key_index {{on_cluster}}
    ADD COLUMN duration_ns UInt64 DEFAULT 0,
    ADD COLUMN outcome String DEFAULT '',
    ADD COLUMN attempt UInt32 DEFAULT 0;
