//! Typed reads of DICOM attributes from an in-memory object, including the nested
//! functional-group sequences of multi-frame (Enhanced CT) objects.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

pub(crate) fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.value().to_str().ok()?;
    let s = s.trim_matches(['\0', ' ']).to_string();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn strings(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| e.value().to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_uppercase()).collect())
        .unwrap_or_default()
}

pub(crate) fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let v = obj.get(tag)?.value().to_multi_float64().ok()?;
    v.iter().all(|x| x.is_finite()).then_some(v)
}

pub(crate) fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.value().to_int::<i64>().ok()
}

/// Items of a sequence attribute (empty if absent or not a sequence).
pub(crate) fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.value().items()).map(|i| i as &[_]).unwrap_or(&[])
}

/// First item of `outer` that holds a `inner` sequence, then that sequence's first item:
/// the shape of every functional group macro (e.g. PlanePositionSequence in a frame's group).
pub(crate) fn group_item(group: &InMemDicomObject, inner: Tag) -> Option<&InMemDicomObject> {
    items(group, inner).first()
}
