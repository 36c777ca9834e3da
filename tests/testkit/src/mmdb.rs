//! A small writer for MaxMind DB (`.mmdb`) files, so tests can build GeoIP databases of known
//! content (kaudit reads them with the `maxminddb` crate, as it reads MaxMind's own).
//! Implements the MaxMind DB format 2.0: an IPv6 search tree (IPv4 under `::/96`), 32-bit
//! records, the data section and the metadata.

use std::net::IpAddr;

use ipnet::IpNet;

/// A value in the data section.
#[derive(Debug, Clone, PartialEq)]
pub enum DbValue {
    /// A UTF-8 string.
    Str(String),
    /// An unsigned 16-bit integer.
    U16(u16),
    /// An unsigned 32-bit integer.
    U32(u32),
    /// An unsigned 64-bit integer.
    U64(u64),
    /// A map (keys in the given order).
    Map(Vec<(String, DbValue)>),
    /// An array.
    Array(Vec<DbValue>),
}

impl DbValue {
    /// A map of `entries`.
    pub fn map<K: Into<String>>(entries: Vec<(K, DbValue)>) -> DbValue {
        DbValue::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// A string.
    pub fn str(s: &str) -> DbValue {
        DbValue::Str(s.to_string())
    }
    /// `{"names": {"en": name}}`, the GeoIP2 shape of countries, subdivisions and cities.
    pub fn named(name: &str) -> DbValue {
        DbValue::map(vec![("names", DbValue::map(vec![("en", DbValue::str(name))]))])
    }
}

#[derive(Clone, Copy)]
enum Child {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a database in memory.
pub struct MmdbWriter {
    database_type: String,
    nodes: Vec<[Child; 2]>,
    data: Vec<u8>,
}

impl MmdbWriter {
    /// An empty database of `database_type` (e.g. `GeoLite2-City`).
    pub fn new(database_type: &str) -> Self {
        MmdbWriter { database_type: database_type.into(), nodes: vec![[Child::Empty, Child::Empty]], data: Vec::new() }
    }

    /// Maps every address in `net` to `value` (later, more specific inserts win inside it).
    pub fn insert(&mut self, net: IpNet, value: &DbValue) {
        let offset = self.data.len();
        encode(value, &mut self.data);
        let (bits, len) = match net.trunc() {
            IpNet::V4(n) => ((u32::from(n.network()) as u128), 96 + n.prefix_len() as usize),
            IpNet::V6(n) => (u128::from(n.network()), n.prefix_len() as usize),
        };
        if len == 0 {
            return;
        }
        let mut node = 0;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth == len - 1 {
                self.nodes[node][bit] = Child::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Child::Node(n) => n,
                other => {
                    // Split an empty or data leaf: the new node inherits it on both sides.
                    let inherited = match other {
                        Child::Data(d) => Child::Data(d),
                        _ => Child::Empty,
                    };
                    self.nodes.push([inherited, inherited]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Child::Node(n);
                    n
                }
            };
        }
    }

    /// Maps the network `cidr` (IPv4 or IPv6) to `value`.
    pub fn insert_str(&mut self, cidr: &str, value: &DbValue) -> Result<(), String> {
        let net = kaudit::IpSet::parse_entry(cidr).map_err(|e| e.to_string())?;
        self.insert(net, value);
        Ok(())
    }

    /// The finished file.
    pub fn finish(&self) -> Vec<u8> {
        let count = self.nodes.len() as u64;
        let mut out = Vec::with_capacity(self.nodes.len() * 8 + self.data.len() + 256);
        for node in &self.nodes {
            for child in node {
                let v = match *child {
                    Child::Node(n) => n as u64,
                    Child::Empty => count,
                    Child::Data(d) => count + 16 + d as u64,
                };
                out.extend_from_slice(&(v as u32).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let meta = DbValue::map(vec![
            ("binary_format_major_version", DbValue::U16(2)),
            ("binary_format_minor_version", DbValue::U16(0)),
            ("build_epoch", DbValue::U64(0)),
            ("database_type", DbValue::Str(self.database_type.clone())),
            ("description", DbValue::map(vec![("en", DbValue::str("built by kaudit"))])),
            ("ip_version", DbValue::U16(6)),
            ("languages", DbValue::Array(vec![DbValue::str("en")])),
            ("node_count", DbValue::U32(count as u32)),
            ("record_size", DbValue::U16(32)),
        ]);
        encode(&meta, &mut out);
        out
    }
}

fn control(out: &mut Vec<u8>, type_id: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if type_id <= 7 {
        out.push((type_id << 5) | first);
    } else {
        out.push(first);
        out.push(type_id - 7);
    }
    out.extend_from_slice(&extra);
}

fn uint(out: &mut Vec<u8>, type_id: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().position(|b| *b != 0).unwrap_or(8);
    control(out, type_id, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(v: &DbValue, out: &mut Vec<u8>) {
    match v {
        DbValue::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        DbValue::U16(n) => uint(out, 5, u64::from(*n)),
        DbValue::U32(n) => uint(out, 6, u64::from(*n)),
        DbValue::U64(n) => uint(out, 9, *n),
        DbValue::Map(entries) => {
            control(out, 7, entries.len());
            for (k, v) in entries {
                encode(&DbValue::Str(k.clone()), out);
                encode(v, out);
            }
        }
        DbValue::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// Parses an address for lookups in tests and tools.
pub fn addr(s: &str) -> Option<IpAddr> {
    kaudit::parse_ip(s)
}
