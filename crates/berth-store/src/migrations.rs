//! Versioned schema migrations. Append only: a released migration is never
//! edited, a change is a new entry. `PRAGMA user_version` records how many
//! have run; each runs in its own transaction with the version bump.

pub const MIGRATIONS: &[&str] = &[
    // 1: images, tags, unpacked layers.
    r#"
    CREATE TABLE images (
        digest         TEXT PRIMARY KEY,
        media_type     TEXT NOT NULL,
        manifest_size  INTEGER NOT NULL,
        config_digest  TEXT NOT NULL,
        config_size    INTEGER NOT NULL,
        index_digest   TEXT,
        os             TEXT NOT NULL,
        architecture   TEXT NOT NULL,
        variant        TEXT,
        created        TEXT,
        source         TEXT NOT NULL,
        repo_digests   TEXT NOT NULL,
        added_at       TEXT NOT NULL
    ) STRICT;
    CREATE TABLE image_layers (
        image      TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        digest     TEXT NOT NULL,
        diff_id    TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (image, position)
    ) STRICT;
    CREATE INDEX image_layers_diff_id ON image_layers(diff_id);
    CREATE TABLE tags (
        name   TEXT PRIMARY KEY,
        image  TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE
    ) STRICT;
    CREATE TABLE layers (
        diff_id       TEXT PRIMARY KEY,
        unpacked_size INTEGER NOT NULL,
        entries       INTEGER NOT NULL,
        unpacked_at   TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: containers. The record is JSON so it can grow without migrations;
    // what must be unique or looked up is a column.
    r#"
    CREATE TABLE containers (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        image_digest  TEXT NOT NULL,
        record        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX containers_image ON containers(image_digest);
    "#,
    // 3: events (lifecycle transitions) and the audit log of API calls.
    r#"
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        time    TEXT NOT NULL,
        record  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE audit (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        time    TEXT NOT NULL,
        record  TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: declared objects (networks, VIPs, later manifests) as JSON keyed by
    // kind and name; addresses handed out per network, unique by design.
    r#"
    CREATE TABLE objects (
        kind    TEXT NOT NULL,
        name    TEXT NOT NULL,
        record  TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    ) STRICT;
    CREATE TABLE addresses (
        network TEXT NOT NULL,
        ip      TEXT NOT NULL,
        owner   TEXT NOT NULL,
        PRIMARY KEY (network, ip)
    ) STRICT;
    CREATE INDEX addresses_owner ON addresses(owner);
    "#,
];
