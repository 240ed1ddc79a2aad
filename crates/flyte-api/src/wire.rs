//! A minimal protobuf wire-format reader and editor: lists the fields of a message as
//! (field number, wire type, byte span), and rewrites chosen fields while copying every
//! other byte verbatim — unknown fields, their order and their encoding included.
//!
//! It knows no schema: callers name fields by number, through [`crate::fields`]. It must
//! never decode and re-encode a whole message, which is what loses the fields a message
//! type does not declare (this crate's declare only what the tool reads; FLYTE-FACTS.md).

use std::ops::Range;

use anyhow::{bail, Result};

/// How a field's value is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    /// Length-delimited: strings, bytes, sub-messages, packed repeated scalars.
    Len,
    /// A deprecated group, kept verbatim (start and end tags included).
    Group,
    Fixed32,
}

/// One field occurrence inside a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    pub wire_type: WireType,
    /// The whole occurrence: tag, length prefix (if any) and value.
    pub span: Range<usize>,
    /// The value: for `Len` the content after the length prefix; for a varint its bytes.
    pub value: Range<usize>,
}

/// The fields of `msg`, in wire order. Fails on malformed input, naming the byte offset.
pub fn fields(msg: &[u8]) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let (field, end) = read_field(msg, pos)?;
        out.push(field);
        pos = end;
    }
    Ok(out)
}

fn read_field(msg: &[u8], start: usize) -> Result<(Field, usize)> {
    let (tag, mut pos) = read_varint(msg, start)?;
    let number = tag >> 3;
    if number == 0 || number > u64::from(u32::MAX >> 3) {
        bail!("invalid field number {number} at byte {start}");
    }
    let number = number as u32;
    let (wire_type, value) = match tag & 7 {
        0 => {
            let (_, end) = read_varint(msg, pos)?;
            (WireType::Varint, pos..end)
        }
        1 => (WireType::Fixed64, pos..take(msg, pos, 8)?),
        2 => {
            let (len, after) = read_varint(msg, pos)?;
            let len = usize::try_from(len).ok().filter(|l| after.checked_add(*l).is_some_and(|e| e <= msg.len()));
            let Some(len) = len else { bail!("length-delimited field {number} at byte {start} runs past the end") };
            pos = after;
            (WireType::Len, pos..pos + len)
        }
        3 => {
            // Skip to the matching end-group tag, nested groups included.
            let mut depth = 1;
            let mut p = pos;
            loop {
                if p >= msg.len() {
                    bail!("group {number} at byte {start} is not closed");
                }
                let (inner, next) = read_field_or_end(msg, p)?;
                match inner {
                    GroupMark::Start => depth += 1,
                    GroupMark::End(n) => {
                        depth -= 1;
                        if depth == 0 {
                            if n != number {
                                bail!("group {number} at byte {start} closed by end tag {n}");
                            }
                            break (WireType::Group, pos..next);
                        }
                    }
                    GroupMark::Other => {}
                }
                p = next;
            }
        }
        5 => (WireType::Fixed32, pos..take(msg, pos, 4)?),
        other => bail!("invalid wire type {other} at byte {start}"),
    };
    let end = value.end;
    Ok((Field { number, wire_type, span: start..end, value }, end))
}

enum GroupMark {
    Start,
    End(u32),
    Other,
}

fn read_field_or_end(msg: &[u8], start: usize) -> Result<(GroupMark, usize)> {
    let (tag, pos) = read_varint(msg, start)?;
    match tag & 7 {
        3 => Ok((GroupMark::Start, pos)),
        4 => Ok((GroupMark::End((tag >> 3) as u32), pos)),
        _ => read_field(msg, start).map(|(_, end)| (GroupMark::Other, end)),
    }
}

fn take(msg: &[u8], pos: usize, n: usize) -> Result<usize> {
    match pos.checked_add(n) {
        Some(end) if end <= msg.len() => Ok(end),
        _ => bail!("fixed-width value at byte {pos} runs past the end"),
    }
}

/// Reads a varint at `pos`; returns it and the position after it.
pub fn read_varint(msg: &[u8], pos: usize) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&b) = msg.get(pos + i) else { bail!("truncated varint at byte {pos}") };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, pos + i + 1));
        }
    }
    bail!("varint longer than 10 bytes at byte {pos}")
}

/// Appends `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The wire bytes of a length-delimited field: tag, length, `payload`.
pub fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    put_varint(&mut out, (u64::from(number) << 3) | 2);
    put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// The wire bytes of a varint field.
pub fn varint_field(number: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    put_varint(&mut out, u64::from(number) << 3);
    put_varint(&mut out, value);
    out
}

/// The payloads of every length-delimited occurrence of field `number`, in wire order.
pub fn all_len(msg: &[u8], number: u32) -> Result<Vec<&[u8]>> {
    Ok(fields(msg)?
        .into_iter()
        .filter(|f| f.number == number && f.wire_type == WireType::Len)
        .map(|f| &msg[f.value])
        .collect())
}

/// The payload of the last length-delimited occurrence of `number` (for a singular field,
/// the last occurrence is the one that counts).
pub fn last_len(msg: &[u8], number: u32) -> Result<Option<&[u8]>> {
    Ok(all_len(msg, number)?.pop())
}

/// A singular string field, or `None` when absent.
pub fn string(msg: &[u8], number: u32) -> Result<Option<String>> {
    match last_len(msg, number)? {
        None => Ok(None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(_) => bail!("field {number} is not valid UTF-8"),
        },
    }
}

/// A singular varint field, or `None` when absent.
pub fn varint(msg: &[u8], number: u32) -> Result<Option<u64>> {
    let last = fields(msg)?.into_iter().rfind(|f| f.number == number && f.wire_type == WireType::Varint);
    last.map(|f| read_varint(msg, f.value.start).map(|(v, _)| v)).transpose()
}

/// What to do with one field occurrence while rewriting a message.
pub enum Edit {
    /// Copy the occurrence's bytes as they are.
    Keep,
    /// Write these bytes (a whole encoded field, tag included; empty removes it).
    Replace(Vec<u8>),
}

/// Rewrites `msg`, asking `edit` about each field occurrence (with the whole message, to
/// read the occurrence's bytes); every kept occurrence is copied byte for byte.
pub fn rewrite(msg: &[u8], mut edit: impl FnMut(&Field) -> Result<Edit>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    for field in fields(msg)? {
        match edit(&field)? {
            Edit::Keep => out.extend_from_slice(&msg[field.span.clone()]),
            Edit::Replace(bytes) => out.extend_from_slice(&bytes),
        }
    }
    Ok(out)
}

/// Rewrites the content of every length-delimited occurrence of sub-message field `number`
/// with `edit`; everything else, and occurrences `edit` leaves unchanged, stay byte for byte.
pub fn edit_each(msg: &[u8], number: u32, mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    rewrite(msg, |f| {
        if f.number != number || f.wire_type != WireType::Len {
            return Ok(Edit::Keep);
        }
        let old = &msg[f.value.clone()];
        let new = edit(old)?;
        Ok(if new == old { Edit::Keep } else { Edit::Replace(len_field(number, &new)) })
    })
}

/// Like [`edit_each`] for a singular sub-message, but when the field is absent `edit` is
/// given an empty message and the result (if not empty) is inserted in field-number order.
pub fn edit_or_insert(msg: &[u8], number: u32, mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    if fields(msg)?.iter().any(|f| f.number == number && f.wire_type == WireType::Len) {
        return edit_each(msg, number, edit);
    }
    let new = edit(&[])?;
    if new.is_empty() {
        return Ok(msg.to_vec());
    }
    insert(msg, &len_field(number, &new), number)
}

/// Sets singular length-delimited field `number` (a string or bytes) to `value`: the last
/// occurrence is replaced in place, or the field is inserted in field-number order.
pub fn set_len(msg: &[u8], number: u32, value: &[u8]) -> Result<Vec<u8>> {
    let all = fields(msg)?;
    let Some(last) = all.iter().rposition(|f| f.number == number) else {
        return insert(msg, &len_field(number, value), number);
    };
    let mut out = Vec::with_capacity(msg.len() + value.len());
    out.extend_from_slice(&msg[..all[last].span.start]);
    out.extend_from_slice(&len_field(number, value));
    out.extend_from_slice(&msg[all[last].span.end..]);
    Ok(out)
}

/// Sets singular varint field `number`, as [`set_len`] does.
pub fn set_varint(msg: &[u8], number: u32, value: u64) -> Result<Vec<u8>> {
    let all = fields(msg)?;
    let encoded = varint_field(number, value);
    let Some(last) = all.iter().rposition(|f| f.number == number) else {
        return insert(msg, &encoded, number);
    };
    let mut out = Vec::with_capacity(msg.len() + 4);
    out.extend_from_slice(&msg[..all[last].span.start]);
    out.extend_from_slice(&encoded);
    out.extend_from_slice(&msg[all[last].span.end..]);
    Ok(out)
}

/// Removes every occurrence of field `number`.
pub fn remove(msg: &[u8], number: u32) -> Result<Vec<u8>> {
    rewrite(msg, |f| Ok(if f.number == number { Edit::Replace(Vec::new()) } else { Edit::Keep }))
}

/// Inserts an encoded field before the first field numbered higher than `number` (so a
/// canonically ordered message stays so), or at the end.
pub fn insert(msg: &[u8], encoded: &[u8], number: u32) -> Result<Vec<u8>> {
    let at = fields(msg)?.into_iter().find(|f| f.number > number).map_or(msg.len(), |f| f.span.start);
    let mut out = Vec::with_capacity(msg.len() + encoded.len());
    out.extend_from_slice(&msg[..at]);
    out.extend_from_slice(encoded);
    out.extend_from_slice(&msg[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with a varint (1), a string (2), an unknown fixed32 (30), a nested
    /// message (4) and an unknown group (31), written by hand.
    fn sample() -> Vec<u8> {
        let mut m = varint_field(1, 300);
        m.extend(len_field(2, b"hi"));
        m.extend([0xf5, 0x01, 1, 2, 3, 4]); // field 30, fixed32
        m.extend(len_field(4, &len_field(1, b"inner")));
        m.extend([0xfb, 0x01, 0x08, 0x05, 0xfc, 0x01]); // group 31 { 1: 5 }
        m
    }

    #[test]
    fn lists_fields_with_spans() {
        let m = sample();
        let f = fields(&m).unwrap();
        let numbers: Vec<(u32, WireType)> = f.iter().map(|f| (f.number, f.wire_type)).collect();
        assert_eq!(
            numbers,
            [
                (1, WireType::Varint),
                (2, WireType::Len),
                (30, WireType::Fixed32),
                (4, WireType::Len),
                (31, WireType::Group)
            ]
        );
        assert_eq!(&m[f[1].value.clone()], b"hi");
        assert_eq!(varint(&m, 1).unwrap(), Some(300));
        assert_eq!(string(&m, 2).unwrap().as_deref(), Some("hi"));
        assert_eq!(f.last().unwrap().span.end, m.len());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&[0x0a, 0x05, b'a'][..], &[0x08, 0x80], &[0x0f], &[0x00, 0x01], &[0x1b, 0x08, 0x01]] {
            assert!(fields(bad).is_err(), "{bad:?}");
        }
        assert!(fields(&[0xff; 11]).is_err());
    }

    #[test]
    fn editing_one_field_keeps_every_other_byte() {
        let m = sample();
        let edited = edit_each(&m, 4, |inner| set_len(inner, 1, b"changed")).unwrap();
        let f = fields(&m).unwrap();
        // Bytes before and after field 4 are identical.
        assert_eq!(&edited[..f[3].span.start], &m[..f[3].span.start]);
        assert!(edited.ends_with(&m[f[4].span.clone()]));
        assert_eq!(string(last_len(&edited, 4).unwrap().unwrap(), 1).unwrap().as_deref(), Some("changed"));
        // An edit that changes nothing returns the very same bytes.
        assert_eq!(edit_each(&m, 4, |inner| Ok(inner.to_vec())).unwrap(), m);
    }

    #[test]
    fn inserting_keeps_field_order() {
        let m = sample();
        let with3 = set_len(&m, 3, b"three").unwrap();
        let numbers: Vec<u32> = fields(&with3).unwrap().iter().map(|f| f.number).collect();
        assert_eq!(numbers, [1, 2, 3, 30, 4, 31]);
        let with5 = edit_or_insert(&m, 5, |inner| set_varint(inner, 1, 7)).unwrap();
        assert_eq!(fields(&with5).unwrap().iter().map(|f| f.number).collect::<Vec<_>>(), [1, 2, 5, 30, 4, 31]);
        // An edit of an absent field that produces nothing inserts nothing.
        assert_eq!(edit_or_insert(&m, 5, |inner| Ok(inner.to_vec())).unwrap(), m);
        assert_eq!(remove(&m, 30).unwrap().len(), m.len() - 6);
    }

    #[test]
    fn setting_replaces_the_last_occurrence_in_place() {
        let mut m = len_field(2, b"a");
        m.extend(len_field(3, b"x"));
        m.extend(len_field(2, b"b"));
        let out = set_len(&m, 2, b"c").unwrap();
        assert_eq!(all_len(&out, 2).unwrap(), [&b"a"[..], b"c"]);
        assert_eq!(fields(&out).unwrap().iter().map(|f| f.number).collect::<Vec<_>>(), [2, 3, 2]);
        let v = set_varint(&varint_field(1, 1), 1, 1 << 40).unwrap();
        assert_eq!(varint(&v, 1).unwrap(), Some(1 << 40));
    }
}
