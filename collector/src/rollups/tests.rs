use super::*;
use crate::spool::tests::sample_batch;
use domain::model::SpanId;

fn with_ids(ids: &[u8]) -> Batch {
    let base = sample_batch();
    Batch {
        spans: ids
            .iter()
            .map(|i| {
                let mut s = base.spans[0].clone();
                s.span_id = SpanId([*i; 8]);
                s
            })
            .collect(),
        logs: base.logs.clone(),
        events: Vec::new(),
    }
}

#[test]
fn a_batch_stored_before_is_not_inserted_again() {
    let mut r = Rollups::default();
    let (first, dropped) = r.fresh(with_ids(&[1, 2]));
    assert_eq!((first.spans.len(), dropped), (2, 0));
    r.stored(&first, 0);
    let (again, dropped) = r.fresh(with_ids(&[1, 2, 3]));
    assert_eq!(again.spans.len(), 1);
    assert_eq!(again.spans[0].span_id, SpanId([3; 8]));
    assert!(again.logs.is_empty());
    assert_eq!(dropped, 2 + first.logs.len());
}

#[test]
fn repeats_within_a_batch_are_inserted_once() {
    let r = Rollups::default();
    let (batch, dropped) = r.fresh(with_ids(&[1, 1, 2, 1]));
    assert_eq!((batch.spans.len(), dropped), (2, 2));
}

#[test]
fn the_same_ids_from_another_service_are_another_span() {
    let mut r = Rollups::default();
    let (first, _) = r.fresh(with_ids(&[1]));
    r.stored(&first, 0);
    let mut other = with_ids(&[1]);
    other.spans[0].service = "mes".into();
    assert_eq!(r.fresh(other).0.spans.len(), 1);
}

#[test]
fn a_batch_not_confirmed_is_not_remembered() {
    let r = Rollups::default();
    let _ = r.fresh(with_ids(&[1]));
    assert_eq!(r.fresh(with_ids(&[1])).0.spans.len(), 1);
}

#[test]
fn only_the_newest_identities_are_remembered() {
    let mut r = Rollups::new(2, 2, ServiceGraph::default());
    let (b, _) = r.fresh(with_ids(&[1, 2, 3]));
    r.stored(&b, 0);
    // 1 was forgotten: inserted again (the raw table collapses it).
    assert_eq!(r.fresh(with_ids(&[1, 2, 3])).0.spans.len(), 1);
}
