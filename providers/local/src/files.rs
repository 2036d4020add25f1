//! The on-disk layout: one JSON file per feature plus `activities.json`, each written
//! atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind as IoKind, Write};
use std::path::{Path, PathBuf};

use ferry_core::{Entry, Error, ErrorKind, Feature, MemoryInventory, Read, Reader, Result, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const FORMAT: u32 = 1;

#[derive(Serialize)]
struct FeatureFile {
    format: u32,
    entries: Vec<Entry>,
}

/// A feature file as read: its rows undecoded, so one bad row (a hand edit) is that row's
/// problem, not the whole file's.
#[derive(Deserialize)]
struct RawFeatureFile {
    format: u32,
    entries: Vec<Value>,
}

/// Decodes one row of feature `f`'s file.
fn entry_row(f: Feature, raw: Value) -> Row<Entry> {
    match ferry_core::read::decode::<Entry>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(e) if e.feature() != f => Row::Bad(format!("a {} entry in the {f} file", e.feature())),
        Ok(e) => Row::Keep(e),
    }
}

#[derive(Serialize, Deserialize, Default)]
struct ActivitiesFile {
    format: u32,
    /// Per feature: how many changing writes happened. Also the evidence that a feature
    /// file once existed.
    checkpoints: BTreeMap<Feature, u64>,
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        IoKind::PermissionDenied => ErrorKind::InvalidInput,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("cannot {what} {}: {e}", path.display()))
}

impl Store {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Store { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn feature_path(&self, f: Feature) -> PathBuf {
        self.dir.join(format!("{f}.json"))
    }

    fn activities_path(&self) -> PathBuf {
        self.dir.join("activities.json")
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<Option<T>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path, "read", e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "{} is corrupt ({e}); ferry will not read it as empty. Restore it from a backup or move it aside to start that feature afresh",
                    path.display()
                ),
            )
        })
    }

    pub(crate) fn checkpoints(&self) -> Result<BTreeMap<Feature, u64>> {
        let a: Option<ActivitiesFile> = self.read_json(&self.activities_path())?;
        Ok(a.map(|a| a.checkpoints).unwrap_or_default())
    }

    /// One feature's file as a read: the file is the whole list (a document read whole),
    /// complete when every row decodes; a row that does not is left out and makes the
    /// read partial.
    pub(crate) fn read(&self, f: Feature) -> Result<Read<Entry>> {
        let path = self.feature_path(f);
        let mut reader = Reader::new(format!("{}", path.display()));
        match self.read_json::<RawFeatureFile>(&path)? {
            Some(file) if file.format > FORMAT => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} has format {} but this ferry reads format {FORMAT}; upgrade ferry",
                        path.display(),
                        file.format
                    ),
                ));
            }
            Some(file) => reader.rows(file.entries, &mut |raw| entry_row(f, raw)),
            None => {
                if self.checkpoints()?.get(&f).copied().unwrap_or(0) > 0 {
                    return Err(Error::new(
                        ErrorKind::MalformedResponse,
                        format!(
                            "{} is missing although {} records writes to it; ferry will not read a vanished file as an empty {f} list",
                            path.display(),
                            self.activities_path().display()
                        ),
                    ));
                }
            }
        }
        Ok(reader.finish_whole())
    }

    /// One feature's inventory, to write to. A file with a row that does not decode is
    /// an error: writing it back would drop that row.
    pub(crate) fn load(&self, f: Feature) -> Result<MemoryInventory> {
        let read = self.read(f)?;
        if let Some(why) = read.proof().reason() {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "{why}; ferry will not rewrite the file and lose that row. Fix or remove \
                     the row by hand"
                ),
            ));
        }
        let mut inv = MemoryInventory::new();
        inv.replace(f, read.rows);
        Ok(inv)
    }

    pub(crate) fn save(&self, f: Feature, inv: &MemoryInventory) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, "create", e))?;
        let file = FeatureFile {
            format: FORMAT,
            entries: inv.entries(f).cloned().collect(),
        };
        self.write_atomic(&self.feature_path(f), &file)?;
        let mut acts: ActivitiesFile = self.read_json(&self.activities_path())?.unwrap_or_default();
        acts.format = FORMAT;
        *acts.checkpoints.entry(f).or_insert(0) += 1;
        self.write_atomic(&self.activities_path(), &acts)
    }

    /// Temp file in the same directory, fsync, rename, fsync the directory: after a crash
    /// the file is either the old one or the new one, never a torn mix.
    fn write_atomic<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec(value).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot encode {}: {e}", path.display()),
            )
        })?;
        let mut f = fs::File::create(&tmp).map_err(|e| io_error(&tmp, "create", e))?;
        f.write_all(&bytes)
            .map_err(|e| io_error(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io_error(&tmp, "sync", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| io_error(path, "replace", e))?;
        if let Ok(d) = fs::File::open(&self.dir) {
            // Persist the rename itself; not every platform allows syncing a directory.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Health: the directory can be created and written.
    pub(crate) fn probe(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, "create", e))?;
        let p = self.dir.join(".health-probe");
        fs::write(&p, b"ok").map_err(|e| io_error(&p, "write", e))?;
        fs::remove_file(&p).map_err(|e| io_error(&p, "remove", e))?;
        Ok(())
    }
}
