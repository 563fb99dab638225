//! The archive's object store, from its URL: `file://`, `s3://`, `gs://`,
//! `az://` (also `azure://`, `abfs://`).
//!
//! S3 takes endpoint, region and credentials from `[sinks.NAME.s3]` when
//! set, else from the standard `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`…). GCS and Azure read theirs from the
//! environment (`GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`…).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};

use super::config::ParquetConfig;
use super::error::ParquetError;

/// Size of each part of a multipart upload.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 4;

/// Where an archive lives: a store and the prefix inside it.
#[derive(Clone, Debug)]
pub struct Archive {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL, for messages (it holds no secret: credentials come from
    /// options or the environment).
    pub url: String,
}

/// What an upload found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    Created,
    /// An object of that name was there already: a redelivery.
    AlreadyThere,
}

/// Object-store options from config, with what the reader needs too.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    pub s3: super::config::S3Options,
    pub request_timeout: Option<Duration>,
}

impl StoreOptions {
    pub fn from_config(config: &ParquetConfig) -> Self {
        StoreOptions {
            s3: config.s3.clone(),
            request_timeout: Some(config.request_timeout.0),
        }
    }
}

impl Archive {
    /// Builds the store for `url`. The only I/O is creating a `file://`
    /// directory that does not exist yet.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, ParquetError> {
        let fail = |reason: String| ParquetError::Config {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            fail(format!(
                "{e}; write it like s3://bucket/prefix or file:///dir"
            ))
        })?;
        let timeout = options.request_timeout.unwrap_or(Duration::from_secs(30));
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(Duration::from_secs(5).min(timeout));
        // The runtime retries a failed batch with its own backoff; the
        // store's retries only ride out a short hiccup.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: timeout,
        };
        let object_prefix = || -> Result<Path, ParquetError> {
            Path::parse(parsed.path().trim_matches('/'))
                .map_err(|e| fail(format!("the path is not a valid object prefix: {e}")))
        };
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| fail("not an absolute local path (file:///dir)".into()))?;
                tokio::fs::create_dir_all(&dir).await.map_err(|e| {
                    fail(format!(
                        "cannot create directory {}: {e}; create it or fix its permissions",
                        dir.display()
                    ))
                })?;
                let local = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| fail(e.to_string()))?
                    .with_automatic_cleanup(true);
                (Arc::new(local), Path::default())
            }
            "s3" | "s3a" => {
                let s3 = &options.s3;
                let mut builder = AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_client_options(client)
                    .with_retry(retry);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                if s3.allow_http {
                    builder = builder.with_allow_http(true);
                }
                let store = builder.build().map_err(|e| {
                    fail(format!("{e}; set [s3] endpoint/region/credentials or the AWS_* environment variables"))
                })?;
                (Arc::new(store), object_prefix()?)
            }
            "gs" => {
                let store = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| {
                        fail(format!(
                            "{e}; set GOOGLE_SERVICE_ACCOUNT (or GOOGLE_APPLICATION_CREDENTIALS)"
                        ))
                    })?;
                (Arc::new(store), object_prefix()?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let store = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| {
                        fail(format!(
                            "{e}; set AZURE_STORAGE_ACCOUNT_NAME and a key or token"
                        ))
                    })?;
                (Arc::new(store), object_prefix()?)
            }
            other => {
                return Err(fail(format!(
                    "scheme `{other}` is not supported; use file://, s3://, gs:// or az://"
                )))
            }
        };
        Ok(Archive {
            store,
            prefix,
            url: url.to_owned(),
        })
    }

    /// `prefix/part1/part2/…`, each part escaped as an object-store segment.
    pub fn path<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        parts
            .into_iter()
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// Writes `bytes` at `path` unless an object is there already.
    ///
    /// Small files use one PUT with create-if-absent (`If-None-Match: *` on
    /// S3 and Azure, a generation precondition on GCS, `O_EXCL` locally):
    /// "already exists" is success. Files of `multipart_threshold` or more
    /// go up in parts; object stores have no create-if-absent for
    /// multipart uploads, so the sink first asks whether the object exists
    /// and skips it if so. Only one sink task writes a given partition, so
    /// nothing races that check, and a rewrite of the same name holds the
    /// same offsets anyway.
    pub async fn put_if_absent(
        &self,
        path: &Path,
        bytes: Bytes,
        multipart_threshold: usize,
    ) -> object_store::Result<Uploaded> {
        if bytes.len() < multipart_threshold {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            return match self
                .store
                .put_opts(path, PutPayload::from_bytes(bytes), options)
                .await
            {
                Ok(_) => Ok(Uploaded::Created),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(Uploaded::AlreadyThere),
                Err(e) => Err(e),
            };
        }
        match self.store.head(path).await {
            Ok(_) => return Ok(Uploaded::AlreadyThere),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let upload = self.store.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut offset = 0;
        while offset < bytes.len() {
            let end = (offset + PART_SIZE).min(bytes.len());
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.put(bytes.slice(offset..end));
            offset = end;
        }
        writer.finish().await?;
        Ok(Uploaded::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_give_store_and_prefix() {
        let options = StoreOptions {
            s3: crate::parquet::config::S3Options {
                region: Some("eu-west-1".into()),
                access_key_id: Some("k".into()),
                secret_access_key: Some(headwater_core::Secret::new("s")),
                ..Default::default()
            },
            request_timeout: None,
        };
        let s3 = Archive::open("s3://bucket/cdc/archive/", &options)
            .await
            .unwrap();
        assert_eq!(s3.prefix.as_ref(), "cdc/archive");
        assert_eq!(
            s3.path(["shop.public.t", "date=2024-01-02", "x y.parquet"])
                .as_ref(),
            "cdc/archive/shop.public.t/date=2024-01-02/x y.parquet"
        );
        let gs = Archive::open("gs://bucket/cdc", &options).await;
        if let Ok(gs) = gs {
            assert_eq!(gs.prefix.as_ref(), "cdc");
        }
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let local = Archive::open(&format!("file://{}", nested.display()), &options)
            .await
            .unwrap();
        assert!(nested.is_dir(), "file:// creates its directory");
        assert_eq!(local.prefix.as_ref(), "");
        let err = Archive::open("ftp://x/y", &options).await.unwrap_err();
        assert!(
            err.to_string().contains("file://, s3://, gs:// or az://"),
            "{err}"
        );
    }
}
