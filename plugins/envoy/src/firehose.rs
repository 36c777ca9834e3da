//! Amazon Data Firehose HTTP-endpoint delivery (EKS audit logs through a CloudWatch Logs
//! subscription): the answer Firehose requires.
//!
//! Firehose POSTs `{"requestId","timestamp","records":[{"data":…}]}` with the header
//! `X-Amz-Firehose-Request-Id`; the core decodes the records and the filter forwards the
//! Events inside as one EventList. Firehose then needs a JSON answer naming the request, and
//! treats any other answer as a failed delivery that it retries: `200` with
//! `{"requestId":…,"timestamp":…}` once the receiver took the events, else the receiver's
//! error status with `errorMessage` (docs.aws.amazon.com/firehose/latest/dev/
//! httpdeliveryrequestresponse.html, "Response format"). The answer waits for the receiver, so
//! a batch the receiver did not take is retried by Firehose, never acknowledged and lost.

/// The request header Firehose sets on every delivery (lower case, as Envoy gives headers).
pub const REQUEST_ID_HEADER: &str = "x-amz-firehose-request-id";

/// Longest request id echoed back (Firehose's are GUIDs).
const MAX_REQUEST_ID: usize = 256;

/// The status and JSON body to answer Firehose with, given the receiver's status.
pub fn reply(request_id: &str, timestamp_ms: u64, upstream_status: u16) -> (u32, String) {
    let id: String = request_id.chars().take(MAX_REQUEST_ID).collect();
    let mut body = String::from("{\"requestId\":");
    kaudit::write_json_str(&mut body, &id);
    body.push_str(&format!(",\"timestamp\":{timestamp_ms}"));
    let status = match upstream_status {
        200..=299 => 200,
        400..=599 => u32::from(upstream_status),
        _ => 502,
    };
    if status != 200 {
        body.push_str(",\"errorMessage\":");
        let message = format!("the audit receiver behind kaudit answered HTTP {upstream_status}");
        kaudit::write_json_str(&mut body, &message);
    }
    body.push('}');
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_failure_answers() {
        assert_eq!(
            reply("ed4a-1", 1_700_000_000_123, 204),
            (200, r#"{"requestId":"ed4a-1","timestamp":1700000000123}"#.into())
        );
        let (status, body) = reply("r\"1", 5, 503);
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["requestId"], "r\"1");
        assert!(v["errorMessage"].as_str().unwrap().contains("503"));
        assert_eq!(reply("x", 1, 302).0, 502, "a redirect is not a delivery");
    }
}
