//! Inserting a batch: spans, logs, the key index and key links, each table in
//! one `INSERT`. Idempotent (see the module docs of `storage`): a batch that
//! failed half-way is retried whole.

use clickhouse::{RowOwned, RowWrite};

use super::rows::{KeyIndexRow, KeyLinkRow, LogRow, SpanRow};
use super::{Store, StoreError};
use crate::model::Batch;

impl Store {
    async fn insert_rows<T: RowOwned + RowWrite>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client().insert::<T>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// Writes every record of `batch` and what is derived from it.
    pub async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        let spans: Vec<SpanRow> = batch.spans.iter().map(SpanRow::from).collect();
        let logs: Vec<LogRow> = batch.logs.iter().map(LogRow::from).collect();
        let index: Vec<KeyIndexRow> = batch
            .spans
            .iter()
            .flat_map(KeyIndexRow::for_span)
            .chain(batch.logs.iter().flat_map(KeyIndexRow::for_log))
            .collect();
        let mut links: Vec<KeyLinkRow> = batch
            .spans
            .iter()
            .flat_map(|s| KeyLinkRow::for_keys(&s.keys, s.start_ns))
            .chain(
                batch
                    .logs
                    .iter()
                    .flat_map(|l| KeyLinkRow::for_keys(&l.keys, l.time_ns)),
            )
            .collect();
        // Many records of one batch repeat the same link; send each once.
        links.sort_by(|a, b| {
            (&a.key_type, &a.key_value, &a.linked_type, &a.linked_value).cmp(&(
                &b.key_type,
                &b.key_value,
                &b.linked_type,
                &b.linked_value,
            ))
        });
        links.dedup_by(|a, b| {
            (&a.key_type, &a.key_value, &a.linked_type, &a.linked_value)
                == (&b.key_type, &b.key_value, &b.linked_type, &b.linked_value)
        });
        tokio::try_join!(
            self.insert_rows("spans", &spans),
            self.insert_rows("logs", &logs),
            self.insert_rows("key_index", &index),
            self.insert_rows("key_links", &links),
        )?;
        Ok(())
    }
}
