//! The audit-event paths a document can answer with a field access: recognised once, when a
//! [`FieldPath`](super::FieldPath) is built (a rule's paths at config load), so evaluating a
//! rule on an event compares no names. `verb`, `objectRef.resource`, `kaudit.ipScope` and the
//! like become a [`KnownPath`]; every other path is [`KnownPath::Other`] and is looked up by
//! name. A document may ignore the tag: it only names what the path's segments already say.

/// The enrichment key the `kaudit.*` tags are recognised under (the config's default key; a
/// document under another key answers those paths by name).
pub const ENRICHMENT_KEY: &str = "kaudit";

/// What a path names, when it is one of the audit event's or the enrichment's leaf fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KnownPath {
    /// Any other path.
    Other,
    /// `verb`.
    Verb,
    /// `stage`.
    Stage,
    /// `userAgent`.
    UserAgent,
    /// `objectRef.<field>`.
    ObjectRef(ObjectRefField),
    /// `responseStatus.<field>`.
    ResponseStatus(StatusField),
    /// `user.<field>`.
    User(UserField),
    /// `impersonatedUser.<field>`.
    ImpersonatedUser(UserField),
    /// `kaudit.<field>` or `kaudit.geo.<field>` ([`ENRICHMENT_KEY`]).
    Enrichment(EnrichmentField),
}

/// The `objectRef` fields the event parse decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectRefField {
    /// `resource`.
    Resource,
    /// `namespace`.
    Namespace,
    /// `name`.
    Name,
    /// `apiGroup`.
    ApiGroup,
    /// `apiVersion`.
    ApiVersion,
    /// `subresource`.
    Subresource,
}

/// The `responseStatus` fields the event parse decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusField {
    /// `code`.
    Code,
    /// `status`.
    Status,
    /// `reason`.
    Reason,
    /// `message`.
    Message,
}

/// The `user` / `impersonatedUser` fields the event parse decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserField {
    /// `username`.
    Username,
    /// `uid`.
    Uid,
    /// `groups`.
    Groups,
}

/// The enrichment's leaf fields (`Enrichment::write_json` names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnrichmentField {
    /// `sourceIP`.
    SourceIp,
    /// `peerIP`.
    PeerIp,
    /// `ipScope`.
    IpScope,
    /// `highRiskIP`.
    HighRiskIp,
    /// `account`.
    Account,
    /// `impersonatedUser`.
    ImpersonatedUser,
    /// `userKind`.
    UserKind,
    /// `resourceType`.
    ResourceType,
    /// `resourceCategory`.
    ResourceCategory,
    /// `success`.
    Success,
    /// `operation`.
    Operation,
    /// `latencyMs`.
    LatencyMs,
    /// `tags`.
    Tags,
    /// `geo.<field>`.
    Geo(GeoField),
}

/// The fields of the enrichment's `geo` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeoField {
    /// `country`.
    Country,
    /// `countryCode`.
    CountryCode,
    /// `province`.
    Province,
    /// `city`.
    City,
    /// `isp`.
    Isp,
    /// `asn`.
    Asn,
}

impl ObjectRefField {
    /// The field named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "resource" => ObjectRefField::Resource,
            "namespace" => ObjectRefField::Namespace,
            "name" => ObjectRefField::Name,
            "apiGroup" => ObjectRefField::ApiGroup,
            "apiVersion" => ObjectRefField::ApiVersion,
            "subresource" => ObjectRefField::Subresource,
            _ => return None,
        })
    }
}

impl StatusField {
    /// The field named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "code" => StatusField::Code,
            "status" => StatusField::Status,
            "reason" => StatusField::Reason,
            "message" => StatusField::Message,
            _ => return None,
        })
    }
}

impl UserField {
    /// The field named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "username" => UserField::Username,
            "uid" => UserField::Uid,
            "groups" => UserField::Groups,
            _ => return None,
        })
    }
}

impl EnrichmentField {
    /// The top-level enrichment field named `name` (not `geo`, which has fields of its own).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sourceIP" => EnrichmentField::SourceIp,
            "peerIP" => EnrichmentField::PeerIp,
            "ipScope" => EnrichmentField::IpScope,
            "highRiskIP" => EnrichmentField::HighRiskIp,
            "account" => EnrichmentField::Account,
            "impersonatedUser" => EnrichmentField::ImpersonatedUser,
            "userKind" => EnrichmentField::UserKind,
            "resourceType" => EnrichmentField::ResourceType,
            "resourceCategory" => EnrichmentField::ResourceCategory,
            "success" => EnrichmentField::Success,
            "operation" => EnrichmentField::Operation,
            "latencyMs" => EnrichmentField::LatencyMs,
            "tags" => EnrichmentField::Tags,
            _ => return None,
        })
    }
}

impl GeoField {
    /// The `geo` field named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "country" => GeoField::Country,
            "countryCode" => GeoField::CountryCode,
            "province" => GeoField::Province,
            "city" => GeoField::City,
            "isp" => GeoField::Isp,
            "asn" => GeoField::Asn,
            _ => return None,
        })
    }
}

impl KnownPath {
    /// What the path of `segments` names.
    pub fn of(segments: &[&str]) -> KnownPath {
        match *segments {
            ["verb"] => KnownPath::Verb,
            ["stage"] => KnownPath::Stage,
            ["userAgent"] => KnownPath::UserAgent,
            ["objectRef", f] => ObjectRefField::from_name(f).map_or(KnownPath::Other, KnownPath::ObjectRef),
            ["responseStatus", f] => StatusField::from_name(f).map_or(KnownPath::Other, KnownPath::ResponseStatus),
            ["user", f] => UserField::from_name(f).map_or(KnownPath::Other, KnownPath::User),
            ["impersonatedUser", f] => UserField::from_name(f).map_or(KnownPath::Other, KnownPath::ImpersonatedUser),
            [ENRICHMENT_KEY, f] => EnrichmentField::from_name(f).map_or(KnownPath::Other, KnownPath::Enrichment),
            [ENRICHMENT_KEY, "geo", f] => {
                GeoField::from_name(f).map_or(KnownPath::Other, |g| KnownPath::Enrichment(EnrichmentField::Geo(g)))
            }
            _ => KnownPath::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::FieldPath;

    fn known(path: &str) -> KnownPath {
        FieldPath::parse(path).unwrap().known()
    }

    #[test]
    fn the_decoded_fields_are_recognised_and_nothing_else() {
        assert_eq!(known("verb"), KnownPath::Verb);
        assert_eq!(known("stage"), KnownPath::Stage);
        assert_eq!(known("userAgent"), KnownPath::UserAgent);
        assert_eq!(known("objectRef.subresource"), KnownPath::ObjectRef(ObjectRefField::Subresource));
        assert_eq!(known("responseStatus.code"), KnownPath::ResponseStatus(StatusField::Code));
        assert_eq!(known("user.groups"), KnownPath::User(UserField::Groups));
        assert_eq!(known("impersonatedUser.username"), KnownPath::ImpersonatedUser(UserField::Username));
        assert_eq!(known("kaudit.ipScope"), KnownPath::Enrichment(EnrichmentField::IpScope));
        assert_eq!(known("kaudit.geo.asn"), KnownPath::Enrichment(EnrichmentField::Geo(GeoField::Asn)));
        assert_eq!(known("\"kaudit\".\"sourceIP\""), KnownPath::Enrichment(EnrichmentField::SourceIp));
        for other in [
            "auditID",
            "verb.x",
            "objectRef",
            "objectRef.uid",
            "objectRef.resource.x",
            "\"objectRef.resource\"",
            "Verb",
            "user.extra",
            "kaudit",
            "kaudit.geo",
            "kaudit.source",
            "kaudit.exec.pod",
            "kaudit.geo.country.x",
            "kaudit.sourceIP.x",
            "enrichment.ipScope",
            "annotations.authorization.k8s.io/decision",
            "requestObject.metadata.name",
        ] {
            assert_eq!(known(other), KnownPath::Other, "{other}");
        }
        assert_eq!(FieldPath::from_segments(["objectRef", "name"]).unwrap().known(), known("objectRef.name"));
        assert_eq!(FieldPath::parse("verb").unwrap().by_name().known(), KnownPath::Other);
    }
}
