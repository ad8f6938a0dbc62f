//! The SQLite implementation of [`Store`].

use std::path::Path;
use std::sync::Mutex;

use berth_core::Digest;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::migrations::MIGRATIONS;
use crate::{AddressClaim, ContainerRecord, ImageRecord, LayerRecord, LayerRef, Log, Result, Store, StoreError};

/// SQLite in WAL mode. One connection behind a mutex: the daemon's writes
/// are small and serialising them keeps every transaction simple.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull { context },
        _ => StoreError::Sqlite { context, source },
    }
}

fn digest(what: &'static str, s: String) -> Result<Digest> {
    Digest::parse(&s).map_err(|e| StoreError::Corrupt { what, detail: e.to_string() })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending
    /// migrations. Safe to call after a crash: SQLite replays or discards
    /// the WAL, and each migration is its own transaction.
    pub fn open(path: &Path) -> Result<Self> {
        let conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        let store = Self::init(conn)?;
        // The store holds Secrets: only root reads it. SQLite gives its WAL
        // and shared-memory files the database file's mode.
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                    StoreError::Corrupt { what: "store file permissions", detail: format!("{}: {e}", file.display()) }
                })?;
            }
        }
        Ok(store)
    }

    /// An in-memory SQLite database with the real schema (for tests that
    /// want SQL semantics without a file).
    pub fn open_in_memory() -> Result<Self> {
        let conn =
            Connection::open_in_memory().map_err(|source| StoreError::Open { path: ":memory:".into(), source })?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql("setting the busy timeout"))?;
        // journal_mode returns a row, so it is queried rather than executed.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(sql("enabling WAL"))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;").map_err(sql("setting pragmas"))?;
        migrate(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// A log's records from `since` on, at most `limit`, by sequence in
    /// `order` (`ASC`: oldest first, `DESC`: newest first).
    fn read_log_in(
        &self,
        log: Log,
        since: Option<&str>,
        limit: usize,
        order: &'static str,
    ) -> Result<Vec<(i64, serde_json::Value)>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT seq, record FROM {} WHERE time >= ?1 ORDER BY seq {order} LIMIT ?2",
                    log.table()
                ))
                .map_err(sql("reading a log"))?;
            let rows = stmt
                .query_map(params![since.unwrap_or(""), limit.min(i64::MAX as usize) as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql("reading a log"))?;
            rows.map(|row| {
                let (seq, json) = row.map_err(sql("reading a log"))?;
                let v = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt { what: "log record", detail: e.to_string() })?;
                Ok((seq, v))
            })
            .collect()
        })
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A panic while holding the lock cannot leave a half transaction
        // behind (rusqlite rolls back on drop), so a poisoned lock is safe.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// The schema version now in force.
    pub fn schema_version(&self) -> Result<i64> {
        self.with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("reading the schema version")))
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("reading the schema version"))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew { found: current, supported });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(sql("starting a migration"))?;
        tx.execute_batch(migration).map_err(sql("running a migration"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(sql("recording a migration"))?;
        tx.commit().map_err(sql("committing a migration"))?;
    }
    Ok(())
}

fn load_image(tx: &Connection, d: &Digest) -> Result<Option<ImageRecord>> {
    let row = tx
        .query_row(
            "SELECT media_type, manifest_size, config_digest, config_size, index_digest, os, architecture, variant,
                    created, source, repo_digests, added_at FROM images WHERE digest = ?1",
            [d.to_string()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                ))
            },
        )
        .optional()
        .map_err(sql("reading an image"))?;
    let Some((media_type, msize, cdigest, csize, idigest, os, arch, variant, created, source, rd, added_at)) = row
    else {
        return Ok(None);
    };
    let mut stmt = tx
        .prepare_cached("SELECT digest, diff_id, media_type, size FROM image_layers WHERE image = ?1 ORDER BY position")
        .map_err(sql("reading image layers"))?;
    let layers = stmt
        .query_map([d.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        })
        .map_err(sql("reading image layers"))?
        .map(|row| {
            let (digest_s, diff_s, media_type, size) = row.map_err(sql("reading image layers"))?;
            Ok(LayerRef {
                digest: digest("layer digest", digest_s)?,
                diff_id: digest("diff id", diff_s)?,
                media_type,
                size: size as u64,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let repo_digests: Vec<String> = serde_json::from_str(&rd)
        .map_err(|e| StoreError::Corrupt { what: "repo digest list", detail: e.to_string() })?;
    Ok(Some(ImageRecord {
        digest: d.clone(),
        media_type,
        manifest_size: msize as u64,
        config_digest: digest("config digest", cdigest)?,
        config_size: csize as u64,
        index_digest: idigest.map(|s| digest("index digest", s)).transpose()?,
        os,
        architecture: arch,
        variant,
        created,
        source,
        repo_digests,
        layers,
        added_at,
    }))
}

fn write_image(tx: &Transaction<'_>, image: &ImageRecord) -> Result<()> {
    let repo_digests = serde_json::to_string(&image.repo_digests).expect("a list of strings serialises");
    tx.execute(
        "INSERT INTO images (digest, media_type, manifest_size, config_digest, config_size, index_digest, os,
                             architecture, variant, created, source, repo_digests, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(digest) DO UPDATE SET repo_digests = excluded.repo_digests,
             index_digest = COALESCE(images.index_digest, excluded.index_digest)",
        params![
            image.digest.to_string(),
            image.media_type,
            image.manifest_size as i64,
            image.config_digest.to_string(),
            image.config_size as i64,
            image.index_digest.as_ref().map(Digest::to_string),
            image.os,
            image.architecture,
            image.variant,
            image.created,
            image.source,
            repo_digests,
            image.added_at,
        ],
    )
    .map_err(sql("writing an image"))?;
    tx.execute("DELETE FROM image_layers WHERE image = ?1", [image.digest.to_string()])
        .map_err(sql("writing image layers"))?;
    for (i, l) in image.layers.iter().enumerate() {
        tx.execute(
            "INSERT INTO image_layers (image, position, digest, diff_id, media_type, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![image.digest.to_string(), i as i64, l.digest.to_string(), l.diff_id.to_string(), l.media_type, l.size as i64],
        )
        .map_err(sql("writing image layers"))?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn put_images(&self, images: &[(ImageRecord, Vec<String>)]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            for (image, tags) in images {
                write_image(&tx, image)?;
                for t in tags {
                    tx.execute(
                        "INSERT INTO tags (name, image) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image = excluded.image",
                        params![t, image.digest.to_string()],
                    )
                    .map_err(sql("writing a tag"))?;
                }
            }
            tx.commit().map_err(sql("committing images"))
        })
    }

    fn add_repo_digest(&self, d: &Digest, repo_digest: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let current: Option<String> = tx
                .query_row("SELECT repo_digests FROM images WHERE digest = ?1", [d.to_string()], |r| r.get(0))
                .optional()
                .map_err(sql("reading repo digests"))?;
            let Some(current) = current else { return Ok(false) };
            let mut list: Vec<String> = serde_json::from_str(&current)
                .map_err(|e| StoreError::Corrupt { what: "repo digest list", detail: e.to_string() })?;
            if !list.iter().any(|r| r == repo_digest) {
                list.push(repo_digest.to_string());
                let json = serde_json::to_string(&list).expect("a list of strings serialises");
                tx.execute("UPDATE images SET repo_digests = ?1 WHERE digest = ?2", params![json, d.to_string()])
                    .map_err(sql("writing repo digests"))?;
            }
            tx.commit().map_err(sql("committing repo digests"))?;
            Ok(true)
        })
    }

    fn get_image(&self, d: &Digest) -> Result<Option<ImageRecord>> {
        self.with(|c| load_image(c, d))
    }

    fn list_images(&self) -> Result<Vec<ImageRecord>> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let digests: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT digest FROM images ORDER BY added_at DESC, digest")
                    .map_err(sql("listing images"))?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql("listing images"))?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql("listing images"))?
            };
            let mut out = Vec::with_capacity(digests.len());
            for d in digests {
                let d = digest("image digest", d)?;
                if let Some(img) = load_image(&tx, &d)? {
                    out.push(img);
                }
            }
            Ok(out)
        })
    }

    fn delete_image(&self, d: &Digest) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            tx.execute("DELETE FROM tags WHERE image = ?1", [d.to_string()]).map_err(sql("deleting tags"))?;
            tx.execute("DELETE FROM image_layers WHERE image = ?1", [d.to_string()])
                .map_err(sql("deleting image layers"))?;
            tx.execute("DELETE FROM images WHERE digest = ?1", [d.to_string()]).map_err(sql("deleting an image"))?;
            tx.commit().map_err(sql("committing an image deletion"))
        })
    }

    fn list_tags(&self) -> Result<Vec<(String, Digest)>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, image FROM tags ORDER BY name").map_err(sql("listing tags"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql("listing tags"))?;
            rows.map(|row| {
                let (name, d) = row.map_err(sql("listing tags"))?;
                Ok((name, digest("tag target", d)?))
            })
            .collect()
        })
    }

    fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>> {
        self.with(|c| {
            let d: Option<String> = c
                .query_row("SELECT image FROM tags WHERE name = ?1", [tag], |r| r.get(0))
                .optional()
                .map_err(sql("resolving a tag"))?;
            d.map(|d| digest("tag target", d)).transpose()
        })
    }

    fn set_tag(&self, tag: &str, d: &Digest) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let exists: bool = tx
                .query_row("SELECT EXISTS(SELECT 1 FROM images WHERE digest = ?1)", [d.to_string()], |r| r.get(0))
                .map_err(sql("checking an image"))?;
            if !exists {
                return Err(StoreError::NotFound(format!("image {d}")));
            }
            tx.execute(
                "INSERT INTO tags (name, image) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image = excluded.image",
                params![tag, d.to_string()],
            )
            .map_err(sql("writing a tag"))?;
            tx.commit().map_err(sql("committing a tag"))
        })
    }

    fn remove_tag(&self, tag: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM tags WHERE name = ?1", [tag]).map_err(sql("removing a tag"))? > 0))
    }

    fn put_layer(&self, l: &LayerRecord) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO layers (diff_id, unpacked_size, entries, unpacked_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(diff_id) DO UPDATE SET unpacked_size = excluded.unpacked_size, entries = excluded.entries,
                     unpacked_at = excluded.unpacked_at",
                params![l.diff_id.to_string(), l.unpacked_size as i64, l.entries as i64, l.unpacked_at],
            )
            .map_err(sql("writing a layer"))?;
            Ok(())
        })
    }

    fn get_layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT unpacked_size, entries, unpacked_at FROM layers WHERE diff_id = ?1",
                    [diff_id.to_string()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
                )
                .optional()
                .map_err(sql("reading a layer"))?;
            Ok(row.map(|(size, entries, at)| LayerRecord {
                diff_id: diff_id.clone(),
                unpacked_size: size as u64,
                entries: entries as u64,
                unpacked_at: at,
            }))
        })
    }

    fn list_layers(&self) -> Result<Vec<LayerRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT diff_id, unpacked_size, entries, unpacked_at FROM layers ORDER BY diff_id")
                .map_err(sql("listing layers"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
                })
                .map_err(sql("listing layers"))?;
            rows.map(|row| {
                let (d, size, entries, at) = row.map_err(sql("listing layers"))?;
                Ok(LayerRecord {
                    diff_id: digest("layer diff id", d)?,
                    unpacked_size: size as u64,
                    entries: entries as u64,
                    unpacked_at: at,
                })
            })
            .collect()
        })
    }

    fn delete_layer(&self, diff_id: &Digest) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM layers WHERE diff_id = ?1", [diff_id.to_string()])
                .map_err(sql("deleting a layer"))?;
            Ok(())
        })
    }

    fn put_container(&self, c: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_string(c).expect("container record serialises");
        self.with(|conn| {
            let r = conn.execute(
                "INSERT INTO containers (id, name, image_digest, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, image_digest = excluded.image_digest,
                     record = excluded.record",
                params![c.id, c.name, c.image_digest.to_string(), json],
            );
            match r {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Conflict(c.name.clone()))
                }
                Err(e) => Err(sql("writing a container")(e)),
            }
        })
    }

    fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        self.with(|c| {
            let json: Option<String> = c
                .query_row("SELECT record FROM containers WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(sql("reading a container"))?;
            json.map(|j| decode_container(id, &j)).transpose()
        })
    }

    fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id, record FROM containers").map_err(sql("listing containers"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql("listing containers"))?;
            let mut out: Vec<ContainerRecord> = rows
                .map(|row| {
                    let (id, j) = row.map_err(sql("listing containers"))?;
                    decode_container(&id, &j)
                })
                .collect::<Result<_>>()?;
            out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    fn delete_container(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM containers WHERE id = ?1", [id]).map_err(sql("deleting a container"))?;
            Ok(())
        })
    }

    fn create_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            let r = c.execute(
                "INSERT INTO objects (kind, name, record) VALUES (?1, ?2, ?3)",
                params![kind, name, record.to_string()],
            );
            match r {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Exists { kind: kind.to_string(), name: name.to_string() })
                }
                Err(e) => Err(sql("creating an object")(e)),
            }
        })
    }

    fn put_object(&self, kind: &str, name: &str, record: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO objects (kind, name, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kind, name) DO UPDATE SET record = excluded.record",
                params![kind, name, record.to_string()],
            )
            .map_err(sql("writing an object"))?;
            Ok(())
        })
    }

    fn get_object(&self, kind: &str, name: &str) -> Result<Option<serde_json::Value>> {
        self.with(|c| {
            let json: Option<String> = c
                .query_row("SELECT record FROM objects WHERE kind = ?1 AND name = ?2", [kind, name], |r| r.get(0))
                .optional()
                .map_err(sql("reading an object"))?;
            json.map(|j| {
                serde_json::from_str(&j)
                    .map_err(|e| StoreError::Corrupt { what: "object record", detail: e.to_string() })
            })
            .transpose()
        })
    }

    fn list_objects(&self, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT name, record FROM objects WHERE kind = ?1 ORDER BY name")
                .map_err(sql("listing objects"))?;
            let rows = stmt
                .query_map([kind], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql("listing objects"))?;
            rows.map(|row| {
                let (name, j) = row.map_err(sql("listing objects"))?;
                let v = serde_json::from_str(&j)
                    .map_err(|e| StoreError::Corrupt { what: "object record", detail: e.to_string() })?;
                Ok((name, v))
            })
            .collect()
        })
    }

    fn delete_object(&self, kind: &str, name: &str) -> Result<bool> {
        self.with(|c| {
            let n = c
                .execute("DELETE FROM objects WHERE kind = ?1 AND name = ?2", [kind, name])
                .map_err(sql("deleting an object"))?;
            Ok(n > 0)
        })
    }

    fn claim_address(&self, network: &str, ip: &str, owner: &str) -> Result<()> {
        self.with(|c| {
            let r = c
                .execute("INSERT INTO addresses (network, ip, owner) VALUES (?1, ?2, ?3)", params![network, ip, owner]);
            match r {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Exists { kind: format!("address in network {network:?}"), name: ip.to_string() })
                }
                Err(e) => Err(sql("claiming an address")(e)),
            }
        })
    }

    fn release_addresses(&self, owner: &str) -> Result<usize> {
        self.with(|c| c.execute("DELETE FROM addresses WHERE owner = ?1", [owner]).map_err(sql("releasing addresses")))
    }

    fn release_address(&self, network: &str, ip: &str) -> Result<bool> {
        self.with(|c| {
            c.execute("DELETE FROM addresses WHERE network = ?1 AND ip = ?2", [network, ip])
                .map(|n| n > 0)
                .map_err(sql("releasing an address"))
        })
    }

    fn list_addresses(&self, network: Option<&str>) -> Result<Vec<AddressClaim>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT network, ip, owner FROM addresses WHERE ?1 IS NULL OR network = ?1 ORDER BY network, ip",
                )
                .map_err(sql("listing addresses"))?;
            let rows = stmt
                .query_map([network], |r| Ok(AddressClaim { network: r.get(0)?, ip: r.get(1)?, owner: r.get(2)? }))
                .map_err(sql("listing addresses"))?;
            rows.map(|r| r.map_err(sql("listing addresses"))).collect()
        })
    }

    fn append(&self, log: Log, time: &str, record: &serde_json::Value) -> Result<i64> {
        let json = record.to_string();
        self.with(|c| {
            c.execute(&format!("INSERT INTO {} (time, record) VALUES (?1, ?2)", log.table()), params![time, json])
                .map_err(sql("appending to a log"))?;
            Ok(c.last_insert_rowid())
        })
    }

    fn read_log(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.read_log_in(log, since, limit, "ASC")
    }

    fn read_log_newest(&self, log: Log, since: Option<&str>, limit: usize) -> Result<Vec<(i64, serde_json::Value)>> {
        self.read_log_in(log, since, limit, "DESC")
    }

    fn prune_log(&self, log: Log, keep: Option<u64>, before: Option<&str>) -> Result<u64> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("pruning a log"))?;
            let mut removed = 0;
            if let Some(before) = before {
                removed += tx
                    .execute(&format!("DELETE FROM {} WHERE time < ?1", log.table()), params![before])
                    .map_err(sql("pruning a log"))?;
            }
            if let Some(keep) = keep {
                // Everything at or below the seq of the newest entry not kept.
                removed += tx
                    .execute(
                        &format!(
                            "DELETE FROM {t} WHERE seq <= (SELECT seq FROM {t} ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                            t = log.table()
                        ),
                        params![keep.min(i64::MAX as u64) as i64],
                    )
                    .map_err(sql("pruning a log"))?;
            }
            tx.commit().map_err(sql("pruning a log"))?;
            Ok(removed as u64)
        })
    }
}

/// A stored container record, or an error naming the container: a record
/// that no longer decodes is never read as defaults.
fn decode_container(id: &str, json: &str) -> Result<ContainerRecord> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt { what: "container record", detail: format!("container {id}: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_container_record_that_does_not_decode_is_an_error_naming_it() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .with(|c| {
                c.execute(
                    "INSERT INTO containers (id, name, image_digest, record) VALUES ('abc', 'web', 'sha256:0', ?1)",
                    [r#"{"id":"abc","request":{"image":"x","restart":7}}"#],
                )
                .map_err(sql("test"))
            })
            .unwrap();
        for e in [store.get_container("abc").unwrap_err(), store.list_containers().unwrap_err()] {
            assert!(matches!(&e, StoreError::Corrupt { detail, .. } if detail.starts_with("container abc: ")), "{e}");
        }
    }
}
