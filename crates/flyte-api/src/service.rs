//! `flyteidl.service`: the DataProxyService upload and the AuthMetadataService answers the
//! client reads to sign in (Flyte 1.16 numbering).

use std::collections::BTreeMap;

/// `flyteidl.service.CreateUploadLocationRequest`: where to upload bytes with this MD5.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateUploadLocationRequest {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(string, tag = "3")]
    pub filename: String,
    /// How long the signed URL is good for; the server's default when absent.
    #[prost(message, optional, tag = "4")]
    pub expires_in: Option<prost_types::Duration>,
    /// The MD5 of the bytes to upload (16 bytes); the upload is addressed by it.
    #[prost(bytes = "vec", tag = "5")]
    pub content_md5: Vec<u8>,
    /// The folder under project/domain; the MD5 (hex) when empty.
    #[prost(string, tag = "6")]
    pub filename_root: String,
    /// Ask for the Content-MD5 header to be part of the signature.
    #[prost(bool, tag = "7")]
    pub add_content_md5_metadata: bool,
}

/// `flyteidl.service.CreateUploadLocationResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateUploadLocationResponse {
    /// Where to HTTP PUT the bytes.
    #[prost(string, tag = "1")]
    pub signed_url: String,
    /// The upload's name in the blob store: what goes into task specs.
    #[prost(string, tag = "2")]
    pub native_url: String,
    #[prost(message, optional, tag = "3")]
    pub expires_at: Option<prost_types::Timestamp>,
    /// Headers the PUT must carry.
    #[prost(btree_map = "string, string", tag = "4")]
    pub headers: BTreeMap<String, String>,
}

/// `flyteidl.service.PublicClientAuthConfigResponse` (GetPublicClientConfig): the public
/// client (PKCE, device flow) FlyteAdmin names, the scopes and audience to ask for, and the
/// metadata key a client sends its token under.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicClientAuthConfigResponse {
    #[prost(string, tag = "1")]
    pub client_id: String,
    #[prost(string, tag = "2")]
    pub redirect_uri: String,
    #[prost(string, repeated, tag = "3")]
    pub scopes: Vec<String>,
    #[prost(string, tag = "4")]
    pub authorization_metadata_key: String,
    #[prost(string, tag = "5")]
    pub service_http_endpoint: String,
    #[prost(string, tag = "6")]
    pub audience: String,
}

/// `flyteidl.service.OAuth2MetadataResponse` (GetOAuth2Metadata): the authorization server's
/// RFC 8414 metadata, as FlyteAdmin relays it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OAuth2MetadataResponse {
    #[prost(string, tag = "1")]
    pub issuer: String,
    #[prost(string, tag = "2")]
    pub authorization_endpoint: String,
    #[prost(string, tag = "3")]
    pub token_endpoint: String,
    #[prost(string, repeated, tag = "4")]
    pub response_types_supported: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    pub scopes_supported: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[prost(string, tag = "7")]
    pub jwks_uri: String,
    #[prost(string, repeated, tag = "8")]
    pub code_challenge_methods_supported: Vec<String>,
    #[prost(string, repeated, tag = "9")]
    pub grant_types_supported: Vec<String>,
    #[prost(string, tag = "10")]
    pub device_authorization_endpoint: String,
}
