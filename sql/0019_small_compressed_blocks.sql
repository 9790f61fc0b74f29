-- Compressed blocks of one granule for the tables read by key, trace or
-- root (issue 16: a customer's journey reads a few rows of 301 keys from
-- every part of the key index).
--
-- A point lookup reads the granule its key lies in and decompresses the
-- whole compressed block around it: 64 KiB of each column by default, where
-- a granule of 1 024 rows is 1 to 16 KiB. With blocks of 4 KiB and up (one
-- granule), on the kept 10 M span day (18.16, 2 cores, idle) the rows of a
-- customer's 301 keys took 65 to 75 ms instead of 110 to 120 ms, and its
-- links 32 instead of 55 ms, for 7 % more bytes on disk.
--
-- 18.16 has no such table setting: the private server sets it for every
-- table in its profile (store/src/server/users.xml); a server of one's own
-- takes `min_compress_block_size` in its default profile (README). Current
-- releases (21.1 on) take it per table. Parts written before keep their
-- blocks until they merge (closed days are merged by the retention pass,
-- store/src/compaction.rs).
{{if table_compress_blocks: ALTER TABLE key_index_v2 {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
{{if table_compress_blocks: ALTER TABLE key_links_v2 {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
{{if table_compress_blocks: ALTER TABLE spans_v2 {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
{{if table_compress_blocks: ALTER TABLE events {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
{{if table_compress_blocks: ALTER TABLE process_instances {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
{{if table_compress_blocks: ALTER TABLE breaches {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
