//! The few protobuf wire operations the sandbox needs to keep specs byte for byte: read the
//! fields of a message without decoding it, and wrap stored bytes into a response. Never
//! decodes through the generated types (that would drop fields they do not know).

/// One field of a message as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

/// A field's value, undecoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(&'a [u8]),
    /// Length-delimited: a string, bytes, a sub-message or a packed repeated field.
    Bytes(&'a [u8]),
    Fixed32(&'a [u8]),
}

/// The fields of a message in wire order; `None` when the bytes are not a message.
pub fn fields(mut bytes: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(&mut bytes)?),
            1 => Value::Fixed64(take(&mut bytes, 8)?),
            2 => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                Value::Bytes(take(&mut bytes, len)?)
            }
            5 => Value::Fixed32(take(&mut bytes, 4)?),
            _ => return None,
        };
        out.push(Field { number, value });
    }
    Some(out)
}

/// The bytes of the last occurrence of a length-delimited field (protobuf's "last one
/// wins" for singular fields); `None` when absent or the bytes are not a message.
pub fn field_bytes(message: &[u8], number: u32) -> Option<&[u8]> {
    fields(message)?.into_iter().rev().find_map(|f| match f.value {
        Value::Bytes(b) if f.number == number => Some(b),
        _ => None,
    })
}

/// Every occurrence of a length-delimited field (a repeated field), in order.
pub fn repeated_bytes(message: &[u8], number: u32) -> Vec<&[u8]> {
    fields(message)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| match f.value {
            Value::Bytes(b) if f.number == number => Some(b),
            _ => None,
        })
        .collect()
}

/// Appends a length-delimited field holding `bytes` as they are.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field.
pub fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if bytes.len() < len {
        return None;
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes_including_unknown_numbers() {
        let mut inner = Vec::new();
        put_varint_field(&mut inner, 24, 300);
        let mut msg = Vec::new();
        put_bytes(&mut msg, 1, b"first");
        put_bytes(&mut msg, 2, &inner);
        put_bytes(&mut msg, 1, b"last");
        assert_eq!(field_bytes(&msg, 1), Some(&b"last"[..]));
        assert_eq!(repeated_bytes(&msg, 1), vec![&b"first"[..], &b"last"[..]]);
        let nested = fields(field_bytes(&msg, 2).unwrap()).unwrap();
        assert_eq!(nested, vec![Field { number: 24, value: Value::Varint(300) }]);
        assert!(fields(&[0x0a, 0x05, b'x']).is_none(), "truncated length is not a message");
    }
}
