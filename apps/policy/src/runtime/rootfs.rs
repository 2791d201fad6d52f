//! Digests of the files of a root filesystem tree, as upstream's `--rootfs` computes them:
//! regular files owned by root, symbolic links not followed, directories in the skip list,
//! upstream's fixed list (`/sys`, `/proc`, `/tmp`, …) and mount points of another file system
//! type than `/` not entered. Keys are paths relative to the tree (with a leading `/`) and
//! spaces become `_` as in IMA logs. Files are hashed by a pool of scoped threads.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use keylime_ima::policy::DigestMap;
use keylime_ima::policy::generate::DigestAlg;
use sha1::Digest as _;

/// Directories upstream never hashes (relative to the tree).
pub const BASE_EXCLUDE_DIRS: [&str; 10] = [
    "/sys",
    "/run",
    "/proc",
    "/lost+found",
    "/dev",
    "/media",
    "/snap",
    "/mnt",
    "/var",
    "/tmp",
];

/// `path` made absolute and normalized lexically (`.` and `..` resolved without following
/// symbolic links), as Python's `os.path.abspath`.
fn abspath(path: &Path) -> anyhow::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// `/`-rooted form of `path` relative to `root`.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    Some(format!("/{}", rel.to_str()?))
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/self/mounts` fields.
fn unescape_mount_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points whose file system type differs from that of `/`, minus those already under
/// an excluded directory (upstream's `match_rootfs`).
fn foreign_mount_points(mounts: &str, excluded: &[String]) -> Vec<String> {
    let table: Vec<(String, &str)> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _dev = f.next()?;
            let mountpoint = unescape_mount_field(f.next()?);
            let fstype = f.next()?;
            Some((mountpoint, fstype))
        })
        .collect();
    let Some(root_type) = table.iter().find(|(m, _)| m == "/").map(|(_, t)| *t) else {
        return Vec::new();
    };
    table
        .iter()
        .filter(|(_, t)| *t != root_type)
        .map(|(m, _)| m.clone())
        .filter(|m| !excluded.iter().any(|e| m.starts_with(e.as_str())))
        .collect()
}

/// Directories (relative to the tree) not to enter, or `None` when the whole tree is skipped.
fn excluded_dirs(root: &Path, skip_path: Option<&str>) -> anyhow::Result<Option<Vec<String>>> {
    let mut dirs = Vec::new();
    for d in skip_path
        .unwrap_or_default()
        .split(',')
        .filter(|d| !d.is_empty())
    {
        let abs_d = abspath(Path::new(d))?;
        if root.starts_with(&abs_d) {
            tracing::info!(rootfs = %root.display(), skip = d, "the whole tree is skipped");
            return Ok(None);
        }
        match relative(root, &abs_d) {
            Some(rel) => dirs.push(rel),
            None => tracing::warn!(
                skip = d,
                rootfs = %root.display(),
                "ignoring a directory to skip that is not under the root filesystem"
            ),
        }
    }
    dirs.extend(BASE_EXCLUDE_DIRS.iter().map(|s| s.to_string()));
    match std::fs::read_to_string("/proc/self/mounts") {
        Ok(mounts) => {
            let foreign = foreign_mount_points(&mounts, &dirs);
            tracing::debug!(?foreign, "mount points of other file system types excluded");
            dirs.extend(foreign);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read /proc/self/mounts; mount points not excluded")
        }
    }
    Ok(Some(dirs))
}

/// The regular files owned by root under `root`, skipping `excluded` directories.
fn collect_files(root: &Path, excluded: &[String]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list directory; skipped");
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                continue;
            }
            if path.to_str().is_none() {
                tracing::warn!(path = %path.display(), "path is not UTF-8; skipped");
                continue;
            }
            if ft.is_file() {
                if meta.uid() == 0 {
                    files.push(path);
                }
            } else if ft.is_dir() {
                let rel = relative(root, &path).unwrap_or_default();
                if excluded.contains(&rel) {
                    tracing::debug!(dir = %path.display(), "excluded directory skipped");
                } else {
                    stack.push(path);
                }
            }
        }
    }
    files
}

/// Lowercase hex digest of everything `reader` yields.
fn hash_reader(alg: DigestAlg, reader: &mut impl Read) -> anyhow::Result<String> {
    fn run<D: sha1::Digest>(mut h: D, r: &mut impl Read) -> anyhow::Result<String> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let out = h.finalize();
        Ok(out.iter().map(|b| format!("{b:02x}")).collect())
    }
    match alg {
        DigestAlg::Sha1 => run(sha1::Sha1::new(), reader),
        DigestAlg::Sha256 => run(sha2::Sha256::new(), reader),
        DigestAlg::Sha384 => run(sha2::Sha384::new(), reader),
        DigestAlg::Sha512 => run(sha2::Sha512::new(), reader),
        DigestAlg::Sm3_256 => {
            anyhow::bail!("hashing files with sm3_256 is not supported; use --algo sha256")
        }
    }
}

fn hash_file(path: &Path, alg: DigestAlg) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path)?;
    hash_reader(alg, &mut f)
}

/// Hashes `files` on up to `threads` threads; unreadable files are logged and left out.
fn hash_all(files: &[PathBuf], alg: DigestAlg, threads: usize) -> Vec<(usize, String)> {
    let next = AtomicUsize::new(0);
    let workers = threads.clamp(1, files.len().max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        match hash_file(path, alg) {
                            Ok(d) => done.push((i, d)),
                            Err(e) => tracing::warn!(
                                file = %path.display(), error = %e, "cannot hash file; skipped"
                            ),
                        }
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Digests of every file of the tree at `rootfs`.
pub fn rootfs_digests(
    rootfs: &Path,
    skip_path: Option<&str>,
    alg: DigestAlg,
) -> anyhow::Result<DigestMap> {
    let root = abspath(rootfs)?;
    if !root.is_dir() {
        anyhow::bail!(
            "the root filesystem {} is not a directory",
            rootfs.display()
        );
    }
    if alg == DigestAlg::Sm3_256 {
        anyhow::bail!("hashing files with sm3_256 is not supported; use --algo sha256");
    }
    let Some(excluded) = excluded_dirs(&root, skip_path)? else {
        return Ok(DigestMap::new());
    };
    let files = collect_files(&root, &excluded);
    tracing::debug!(files = files.len(), rootfs = %root.display(), "hashing");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut map = DigestMap::new();
    for (i, digest) in hash_all(&files, alg, threads) {
        let key = if root == Path::new("/") {
            files[i].to_str().unwrap_or_default().to_owned()
        } else {
            relative(&root, &files[i]).unwrap_or_default()
        };
        map.entry(key.replace(' ', "_")).or_default().push(digest);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abspath_is_lexical() {
        assert_eq!(
            abspath(Path::new("/a/./b/../c")).unwrap(),
            Path::new("/a/c")
        );
        assert_eq!(abspath(Path::new("/..")).unwrap(), Path::new("/"));
    }

    #[test]
    fn mount_points_of_other_types() {
        let mounts = "overlay / overlay rw 0 0\n\
                      proc /proc proc rw 0 0\n\
                      tmpfs /data\\040x tmpfs rw 0 0\n\
                      /dev/sda1 /home overlay rw 0 0\n";
        let got = foreign_mount_points(mounts, &["/proc".into()]);
        assert_eq!(got, vec!["/data x".to_string()]);
        assert!(foreign_mount_points("garbage", &[]).is_empty());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/a/b")).unwrap(),
            "/a/b"
        );
        assert_eq!(relative(Path::new("/"), Path::new("/usr")).unwrap(), "/usr");
        assert!(relative(Path::new("/r"), Path::new("/rr/a")).is_none());
    }
}
