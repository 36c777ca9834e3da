//! GeoIP lookups from MaxMind-format (`.mmdb`) databases: country, province/region, city and
//! ISP/ASN where the database has them (GeoIP2/GeoLite2 City, Country, ASN, ISP, and the
//! compatible DB-IP/IPinfo layouts). The bytes come from the host; nothing is read here.

use std::collections::BTreeMap;
use std::net::IpAddr;

use maxminddb::Reader;
use serde::Deserialize;

use crate::event::raw::OutBuf;

use super::{EnrichError, ObjWriter};

/// Location and network owner of an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// Country name, in the configured language.
    pub country: Option<String>,
    /// ISO 3166-1 country code.
    pub country_code: Option<String>,
    /// First subdivision (province, state).
    pub province: Option<String>,
    /// City name.
    pub city: Option<String>,
    /// Internet service provider or organisation.
    pub isp: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
}

impl GeoInfo {
    fn is_empty(&self) -> bool {
        *self == GeoInfo::default()
    }

    /// Writes the fields present as JSON members (no braces).
    pub fn write_json<O: OutBuf + ?Sized>(&self, out: &mut O) {
        let mut w = ObjWriter::new(out);
        let fields = [
            ("country", &self.country),
            ("countryCode", &self.country_code),
            ("province", &self.province),
            ("city", &self.city),
            ("isp", &self.isp),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                w.str(k, v);
            }
        }
        if let Some(asn) = self.asn {
            w.num("asn", u64::from(asn));
        }
        w.end();
    }

    /// Fills fields this one lacks from `other`.
    fn merge(&mut self, other: GeoInfo) {
        self.country = self.country.take().or(other.country);
        self.country_code = self.country_code.take().or(other.country_code);
        self.province = self.province.take().or(other.province);
        self.city = self.city.take().or(other.city);
        self.isp = self.isp.take().or(other.isp);
        self.asn = self.asn.or(other.asn);
    }
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Named<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow, default)]
    isp: Option<&'a str>,
    #[serde(borrow, default)]
    organization: Option<&'a str>,
}

/// One or more opened databases, consulted in order (e.g. a City and an ASN database).
pub struct GeoDb {
    readers: Vec<Reader<Vec<u8>>>,
    language: String,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GeoDb({} databases)", self.readers.len())
    }
}

impl GeoDb {
    /// Opens databases from their bytes; `language` picks the name (`en`, `zh-CN`, ...).
    pub fn open(databases: Vec<Vec<u8>>, language: &str) -> Result<GeoDb, EnrichError> {
        let readers = databases
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                Reader::from_source(bytes)
                    .map_err(|e| EnrichError::NotMaxMindDb { database: i + 1, reason: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GeoDb { readers, language: language.to_string() })
    }

    /// What the databases know about `addr` (`None`: nothing).
    pub fn lookup(&self, addr: IpAddr) -> Option<GeoInfo> {
        let mut info = GeoInfo::default();
        for reader in &self.readers {
            let Ok(result) = reader.lookup(addr) else { continue };
            let Ok(Some(rec)) = result.decode::<Record>() else { continue };
            info.merge(self.convert(rec));
        }
        (!info.is_empty()).then_some(info)
    }

    fn name(&self, n: &Named) -> Option<String> {
        n.names.get(self.language.as_str()).or_else(|| n.names.get("en")).map(|s| s.to_string())
    }

    fn convert(&self, rec: Record) -> GeoInfo {
        GeoInfo {
            country: rec.country.as_ref().and_then(|c| self.name(c)),
            country_code: rec.country.as_ref().and_then(|c| c.iso_code).map(str::to_string),
            province: rec.subdivisions.as_ref().and_then(|s| s.first()).and_then(|s| self.name(s)),
            city: rec.city.as_ref().and_then(|c| self.name(c)),
            isp: rec.isp.or(rec.autonomous_system_organization).or(rec.organization).map(str::to_string),
            asn: rec.autonomous_system_number,
        }
    }
}
