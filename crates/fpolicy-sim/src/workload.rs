//! A deterministic, realistic mix of file operations.
//!
//! Each simulated client works on a few files at a time, each following a
//! script: create, writes in several chunks, close, sometimes a set-attr, a
//! rename, a delete; between files, directory operations, reads, lookups and
//! links. Paths come from a synthetic tree with spaces, non-ASCII names and
//! deep directories. Protocols are SMB (2.1, 3.0, 3.1.1) and NFS (3, 4.0,
//! 4.1). The same seed gives the same sequence.

use fpolicy_proto::{
    ClientProtocolVersion, FileType, OperationFields, PathName, PathNameType, Protocol,
    ProtocolVersion, ReqType, ScreenRequest, UserIdType, UserIdentity, sample,
};

/// A small, fast PRNG (xorshift64*): deterministic and dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const DIRS: &[&str] = &[
    "/legal/contracts/2026",
    "/legal/compliance",
    "/finance/reports/Q3 2026",
    "/Projects/Été 2026/données brutes",
    "/media/raw footage/カメラ A",
    "/home/user1/deep/a/b/c/d/e/f/g/h/i/j",
    "/engineering/build output",
    "/hr/個人情報",
];

const NAMES: &[&str] = &[
    "report",
    "contrat n°",
    "data_export",
    "写真",
    "meeting notes",
    "invoice-",
    "backup & restore",
];

const EXTENSIONS: &[&str] = &[".pdf", ".docx", ".xlsx", ".csv", ".jpg", ".txt", ".mp4"];

/// The client protocol of a simulated client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProtocol {
    Smb(u32, u32),
    Nfs(u32, u32),
}

impl ClientProtocol {
    const ALL: [ClientProtocol; 6] = [
        ClientProtocol::Smb(2, 1),
        ClientProtocol::Smb(3, 0),
        ClientProtocol::Smb(3, 1),
        ClientProtocol::Nfs(3, 0),
        ClientProtocol::Nfs(4, 0),
        ClientProtocol::Nfs(4, 1),
    ];

    fn family(self) -> Protocol {
        match self {
            ClientProtocol::Smb(..) => Protocol::Smb,
            ClientProtocol::Nfs(..) => Protocol::Nfs,
        }
    }

    fn version(self) -> ClientProtocolVersion {
        let (major, minor) = match self {
            ClientProtocol::Smb(a, b) | ClientProtocol::Nfs(a, b) => (a, b),
        };
        ClientProtocolVersion { major, minor }
    }

    fn req(self, smb: ReqType, nfs: ReqType) -> ReqType {
        match self.family() {
            Protocol::Smb => smb,
            Protocol::Nfs => nfs,
        }
    }
}

/// One operation the workload produces, before it becomes a SCREEN_REQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub req_type: ReqType,
    pub protocol: ClientProtocol,
    /// Volume-relative UNIX path with a leading `/`.
    pub path: String,
    /// Rename or link target.
    pub target: Option<String>,
    pub file_size: u64,
    pub offset: u64,
    pub length: u32,
}

#[derive(Debug)]
struct FileScript {
    protocol: ClientProtocol,
    path: String,
    size: u64,
    step: u8,
    chunks_left: u8,
    rename: bool,
    delete: bool,
}

/// Generates operations for one simulated node.
#[derive(Debug)]
pub struct Workload {
    rng: Rng,
    active: Vec<FileScript>,
    next_file: u64,
    node: usize,
    dirs_made: u64,
}

/// Files a client works on at once.
const ACTIVE_FILES: usize = 8;

impl Workload {
    pub fn new(seed: u64, node: usize) -> Self {
        Workload {
            rng: Rng::new(seed ^ (node as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
            active: Vec::with_capacity(ACTIVE_FILES),
            next_file: 0,
            node,
            dirs_made: 0,
        }
    }

    fn new_file(&mut self) -> FileScript {
        let n = self.next_file;
        self.next_file += 1;
        let dir = *self.rng.pick(DIRS);
        let name = *self.rng.pick(NAMES);
        let ext = *self.rng.pick(EXTENSIONS);
        let protocol = *self.rng.pick(&ClientProtocol::ALL);
        FileScript {
            protocol,
            path: format!("{dir}/{name}{n} n{}{ext}", self.node),
            size: 0,
            step: 0,
            chunks_left: 1 + self.rng.below(4) as u8,
            rename: self.rng.below(4) == 0,
            delete: self.rng.below(3) == 0,
        }
    }

    fn side_operation(&mut self) -> Operation {
        let protocol = *self.rng.pick(&ClientProtocol::ALL);
        let dir = *self.rng.pick(DIRS);
        let op = |req_type, path: String| Operation {
            req_type,
            protocol,
            path,
            target: None,
            file_size: 4096,
            offset: 0,
            length: 0,
        };
        match self.rng.below(8) {
            0 => {
                self.dirs_made += 1;
                op(
                    protocol.req(ReqType::SmbCreatDir, ReqType::NfsCreatDir),
                    format!("{dir}/new folder {} n{}", self.dirs_made, self.node),
                )
            }
            1 if self.dirs_made > 0 => op(
                protocol.req(ReqType::SmbDelDir, ReqType::NfsDelDir),
                format!("{dir}/new folder {} n{}", self.dirs_made, self.node),
            ),
            2 => {
                let mut o = op(
                    protocol.req(ReqType::SmbRd, ReqType::NfsRd),
                    format!("{dir}/shared index.csv"),
                );
                o.length = 65_536;
                o
            }
            3 => op(ReqType::NfsLookup, format!("{dir}/shared index.csv")),
            4 => op(
                protocol.req(ReqType::SmbGetAttr, ReqType::NfsGetAttr),
                dir.to_owned(),
            ),
            5 => op(
                protocol.req(ReqType::SmbOpen, ReqType::NfsOpen),
                format!("{dir}/shared index.csv"),
            ),
            6 => {
                let mut o = op(ReqType::NfsLnk, format!("{dir}/shared index.csv"));
                o.target = Some(format!("{dir}/index link n{}", self.node));
                o
            }
            _ => op(ReqType::NfsSymLnk, format!("{dir}/latest n{}", self.node)),
        }
    }

    /// The next operation.
    pub fn next_operation(&mut self) -> Operation {
        if self.rng.below(10) == 0 {
            return self.side_operation();
        }
        while self.active.len() < ACTIVE_FILES {
            let f = self.new_file();
            self.active.push(f);
        }
        let i = self.rng.below(self.active.len() as u64) as usize;
        let chunk = 4096 * (1 + self.rng.below(64));
        let f = &mut self.active[i];
        let p = f.protocol;
        let mut op = Operation {
            req_type: ReqType::SmbCreat,
            protocol: p,
            path: f.path.clone(),
            target: None,
            file_size: f.size,
            offset: 0,
            length: 0,
        };
        let mut finished = false;
        match f.step {
            0 => {
                op.req_type = p.req(ReqType::SmbCreat, ReqType::NfsCreat);
                f.step = 1;
            }
            1 => {
                op.req_type = p.req(ReqType::SmbWr, ReqType::NfsWr);
                op.offset = f.size;
                op.length = chunk as u32;
                f.size += chunk;
                op.file_size = f.size;
                f.chunks_left -= 1;
                if f.chunks_left == 0 {
                    f.step = 2;
                }
            }
            2 => {
                // NFSv3 has no close; SMB and NFSv4 do.
                if p == ClientProtocol::Nfs(3, 0) {
                    op.req_type = ReqType::NfsSetAttr;
                } else {
                    op.req_type = p.req(ReqType::SmbClose, ReqType::NfsClose);
                }
                f.step = 3;
            }
            3 if f.rename => {
                let new_path = f.path.replacen('.', " (renamed).", 1);
                op.req_type = p.req(ReqType::SmbRen, ReqType::NfsRen);
                op.target = Some(new_path.clone());
                f.path = new_path;
                f.rename = false;
            }
            3 if f.delete => {
                op.req_type = p.req(ReqType::SmbDel, ReqType::NfsDel);
                finished = true;
            }
            _ => {
                op.req_type = p.req(ReqType::SmbSetAttr, ReqType::NfsSetAttr);
                finished = true;
            }
        }
        if finished {
            self.active.swap_remove(i);
        }
        op
    }
}

impl Operation {
    /// The SCREEN_REQ ONTAP would send for this operation.
    pub fn to_request(
        &self,
        req_id: u64,
        version: ProtocolVersion,
        generation_time: u64,
    ) -> ScreenRequest {
        let mut req = sample::screen_request(req_id, self.req_type, &self.path, version);
        let c = &mut req.common;
        c.protocol_version = Some(self.protocol.version());
        c.file_size = self.file_size;
        if version.has_generation_time() {
            c.generation_time = Some(generation_time);
        }
        if let ClientProtocol::Nfs(..) = self.protocol {
            c.user_id_type = Some(UserIdType::UnixOnly);
            c.user = Some(UserIdentity::UnixUid(1000 + (req_id % 7) as u32));
        }
        if matches!(
            self.req_type,
            ReqType::NfsLookup | ReqType::NfsGetAttr | ReqType::SmbGetAttr
        ) && !self.path.contains('.')
        {
            c.file_type = Some(FileType::Dir);
        }
        match &mut req.fields {
            OperationFields::Read { offset, length }
            | OperationFields::Write { offset, length } => {
                *offset = self.offset;
                *length = self.length;
            }
            OperationFields::Target { target } => {
                let new = self.target.clone().unwrap_or_default();
                *target = match self.protocol.family() {
                    Protocol::Smb => vec![
                        PathName {
                            name_type: Some(PathNameType::WinName),
                            name: new.replace('/', "\\"),
                        },
                        PathName {
                            name_type: Some(PathNameType::UnixName),
                            name: new,
                        },
                    ],
                    Protocol::Nfs => vec![PathName {
                        name_type: Some(PathNameType::UnixName),
                        name: new,
                    }],
                };
            }
            _ => {}
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_scripts_are_ordered() {
        let mut a = Workload::new(7, 0);
        let mut b = Workload::new(7, 0);
        let mut created = std::collections::HashSet::new();
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let op = a.next_operation();
            assert_eq!(op, b.next_operation());
            kinds.insert(op.req_type);
            match op.req_type {
                ReqType::SmbCreat | ReqType::NfsCreat => {
                    assert!(created.insert(op.path.clone()), "a file is created once");
                }
                ReqType::SmbWr
                | ReqType::NfsWr
                | ReqType::SmbRen
                | ReqType::NfsRen
                | ReqType::SmbDel
                | ReqType::NfsDel => {
                    assert!(created.contains(&op.path), "{:?} before create", op);
                    if let Some(t) = &op.target {
                        created.insert(t.clone());
                    }
                }
                _ => {}
            }
        }
        // The mix covers both protocols and the main operations.
        for k in [
            ReqType::SmbCreat,
            ReqType::NfsCreat,
            ReqType::SmbWr,
            ReqType::NfsWr,
            ReqType::SmbRen,
            ReqType::NfsRen,
            ReqType::SmbDel,
            ReqType::NfsDel,
            ReqType::SmbCreatDir,
            ReqType::NfsDelDir,
            ReqType::SmbClose,
            ReqType::NfsSetAttr,
        ] {
            assert!(kinds.contains(&k), "{k} in the mix");
        }
        assert!(created.iter().any(|p| !p.is_ascii()));
        assert!(created.iter().any(|p| p.contains(' ')));
    }

    #[test]
    fn different_nodes_differ() {
        let mut a = Workload::new(7, 0);
        let mut b = Workload::new(7, 1);
        let same = (0..100)
            .filter(|_| a.next_operation() == b.next_operation())
            .count();
        assert!(same < 50);
    }
}
