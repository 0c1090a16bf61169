//! examples/slurm/ on a real Slurm: a private single-node cluster from Debian's packages
//! (munge, slurmctld, slurmd, slurm-client; `make deps` installs them) started in a temp
//! dir, both pipelines submitted with the example's own scripts, every job's end checked,
//! the results compared with the same work run directly, and nothing left behind.
//! Live (root, namespaces), feature `netns-tests`.

#![cfg(feature = "netns-tests")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// munged + slurmctld + slurmd, each a child of this test, stopped by PID on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    path: String,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        for bin in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scontrol",
        ] {
            let found = ["/usr/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(bin).exists());
            assert!(
                found,
                "{bin} is missing: `make deps` installs munge, slurmctld, slurmd and slurm-client"
            );
        }
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        // A key made for this run only (munged refuses a group/world-readable one).
        let key: Vec<u8> = (0..1024).map(|_| rand_byte()).collect();
        let key_path = dir.join("munge.key");
        std::fs::write(&key_path, key).expect("key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        let socket = dir.join("munge.sock");
        let tcplab_dir = assert_cmd::cargo::cargo_bin("tcplab")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let path = format!(
            "{}:{}",
            tcplab_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let mut c = Cluster {
            dir: dir.to_owned(),
            conf: dir.join("slurm.conf"),
            path,
            daemons: Vec::new(),
        };
        let d = |name: &str| dir.join(name).display().to_string();
        c.spawn(
            "munged",
            Command::new("munged").args([
                "--force",
                "--foreground",
                &format!("--socket={}", socket.display()),
                &format!("--key-file={}", key_path.display()),
                &format!("--log-file={}", d("log/munged.log")),
                &format!("--pid-file={}", d("munged.pid")),
                &format!("--seed-file={}", d("munged.seed")),
            ]),
        );
        wait_for("munged's socket", Duration::from_secs(10), || {
            socket.exists()
        });
        let node = format!("tcplab{}", std::process::id());
        let host = String::from_utf8(
            Command::new("hostname")
                .arg("-s")
                .output()
                .expect("hostname")
                .stdout,
        )
        .expect("utf-8");
        let host = host.trim();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = format!(
            "ClusterName=tcplab{pid}\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={socket}\n\
             CredType=cred/munge\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctldpid}\n\
             SlurmdPidFile={dpid}\n\
             SlurmctldLogFile={ctldlog}\n\
             SlurmdLogFile={dlog}\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             SchedulerType=sched/builtin\n\
             SchedulerParameters=batch_sched_delay=0\n\
             DependencyParameters=kill_invalid_depend\n\
             ReturnToService=2\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             MinJobAge=600\n\
             NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=tcplab Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
            pid = std::process::id(),
            ctld = free_port(),
            slurmd = free_port(),
            socket = socket.display(),
            state = d("state"),
            spool = d("spool"),
            ctldpid = d("slurmctld.pid"),
            dpid = d("slurmd.pid"),
            ctldlog = d("log/slurmctld.log"),
            dlog = d("log/slurmd.log"),
        );
        std::fs::write(&c.conf, conf).expect("slurm.conf");
        let conf_arg = c.conf.display().to_string();
        c.spawn(
            "slurmctld",
            Command::new("slurmctld").args(["-D", "-i", "-f", &conf_arg]),
        );
        c.spawn(
            "slurmd",
            Command::new("slurmd").args(["-D", "-N", &node, "-f", &conf_arg]),
        );
        wait_for("the node to be idle", Duration::from_secs(30), || {
            let o = c.cmd("sinfo").args(["-h", "-o", "%T"]).output();
            o.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
        });
        c
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir.join(format!("log/{name}.out"))).expect("log");
        let child = cmd
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// A client command (or one of the example's scripts) pointed at this cluster, with
    /// the tcplab under test first on PATH.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).env("PATH", &self.path);
        c
    }

    /// `wait.sh IDS…` (bounded: a hang is a failure, not a stuck test): its exit code and
    /// its report.
    fn wait(&self, ids: &[String]) -> (Option<i32>, String) {
        let out = self
            .cmd("timeout")
            .arg("600")
            .arg(repo().join("examples/slurm/wait.sh"))
            .args(ids)
            .output()
            .expect("wait.sh");
        assert_ne!(out.status.code(), Some(124), "the pipeline hung");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["log/slurmctld.log", "log/slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("--- {f}\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slurmd first (it stops its job steps), then the controller, then munge: by PID.
        for (_, child) in self.daemons.iter_mut().rev() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn rand_byte() -> u8 {
    use std::io::Read;
    let mut b = [0u8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b[0]
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// "ARRAY OTHER" printed by a submit script.
fn submit(c: &Cluster, script: &str, env: &[(&str, String)]) -> Vec<String> {
    let mut cmd = c.cmd(repo().join("examples/slurm").join(script));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("submit");
    assert!(out.status.success(), "{script}: {out:?}\n{}", c.logs());
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    ids
}

/// Point → (dominant outcome, runs) from a sweep's results.json.
fn points(dir: &Path) -> BTreeMap<u64, (String, u64)> {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    let mut best: BTreeMap<u64, (String, u64, u64)> = BTreeMap::new();
    for r in rows {
        let (p, o, n, runs) = (
            r["point"].as_u64().expect("point"),
            r["outcome"].as_str().expect("outcome").to_owned(),
            r["count"].as_u64().expect("count"),
            r["runs"].as_u64().expect("runs"),
        );
        let e = best.entry(p).or_insert((o.clone(), 0, runs));
        if n > e.1 {
            *e = (o, n, runs);
        }
    }
    best.into_iter().map(|(p, (o, _, r))| (p, (o, r))).collect()
}

/// The matrix's text up to the counts and layout: cells' outcomes and marks in order.
fn matrix_shape(text: &str) -> Vec<String> {
    let start = text.find("scenario ").expect("a matrix");
    text[start..]
        .lines()
        .take_while(|l| !l.starts_with('✗'))
        .filter(|l| !l.contains("timing miss") && !l.starts_with('─'))
        .map(|l| {
            let l: String = l.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut out = String::new();
            let mut chars = l.chars().peekable();
            while let Some(ch) = chars.next() {
                out.push(ch);
                if ch == '×' {
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                }
            }
            out
        })
        .collect()
}

/// Paths outside any temp dir where a default Slurm or munge would leave something.
fn system_state() -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        "/var/spool/slurmctld",
        "/var/spool/slurmd",
        "/var/spool/slurm",
        "/var/log/slurm",
        "/var/log/munge",
        "/var/lib/munge",
        "/run/munge",
        "/run/slurm",
        "/etc/slurm",
    ] {
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut names: Vec<String> = rd
                .filter_map(Result::ok)
                .map(|e| {
                    let m = e.metadata().ok().and_then(|m| m.modified().ok());
                    format!("{} {m:?}", e.path().display())
                })
                .collect();
            names.sort();
            v.extend(names);
        }
    }
    v
}

/// Processes whose command line or working directory is inside `dir`.
fn processes_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        if cmdline.contains(&*dir.to_string_lossy()) || cwd.starts_with(dir) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

#[test]
fn netns_slurm_runs_the_sweep_and_kernel_pipelines_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().canonicalize().expect("canonical");
    let before = system_state();
    let scenario = repo().join("scenarios/seed/seed-three-way.toml");
    // Client close delays on both sides of the ~40 ms delayed ACK: three-way, then four-way.
    let vary = "client.close_delay_ms=10,20,60,100".to_owned();
    let started = Instant::now();
    let cluster = Cluster::start(&dir.join("slurm"));
    let up = started.elapsed();

    // 1. The sweep: 4 shards as an array job, the merge after them.
    let t = Instant::now();
    let work = dir.join("sweep");
    let ids = submit(
        &cluster,
        "submit-sweep.sh",
        &[
            ("TCPLAB_WORK", work.display().to_string()),
            ("TCPLAB_SHARDS", "4".into()),
            ("TCPLAB_REPEAT", "3".into()),
            ("TCPLAB_SCENARIO", scenario.display().to_string()),
            ("TCPLAB_VARY", vary.clone()),
        ],
    );
    let (code, report) = cluster.wait(&ids);
    assert_eq!(code, Some(0), "{report}\n{}", cluster.logs());
    // 4 tasks + the merge, each COMPLETED.
    let states: Vec<&str> = report.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(states.len(), 5, "{report}");
    assert!(states.iter().all(|l| l.contains(" COMPLETED ")), "{report}");
    let sweep_s = t.elapsed();
    let whole = dir.join("whole");
    let out = Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .arg("sweep")
        .arg(&scenario)
        .args(["--vary", &vary, "--repeat", "3", "--out"])
        .arg(&whole)
        .output()
        .expect("sweep");
    assert!(out.status.success(), "{out:?}");
    let merged = points(&work.join("merged"));
    assert_eq!(merged.len(), 4, "{merged:?}");
    assert_eq!(merged, points(&whole), "merged sweep vs unsharded sweep");

    // 2. The kernel matrix: two columns (both this host's kernel: no QEMU needed), then
    // the matrix job; against `run --kernel host --kernel host` run directly.
    let t = Instant::now();
    let work = dir.join("kernels");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::write(work.join("kernels.txt"), "host\nhost\n").expect("kernels.txt");
    let scenarios = format!(
        "{} {}",
        scenario.display(),
        repo().join("scenarios/reset/server-linger0.toml").display()
    );
    let ids = submit(
        &cluster,
        "submit-kernels.sh",
        &[
            ("TCPLAB_WORK", work.display().to_string()),
            (
                "TCPLAB_KERNELS",
                work.join("kernels.txt").display().to_string(),
            ),
            ("TCPLAB_SCENARIOS", scenarios.clone()),
            ("TCPLAB_RUN_ARGS", "--repeat 3".into()),
        ],
    );
    let (code, report) = cluster.wait(&ids);
    assert_eq!(code, Some(0), "{report}\n{}", cluster.logs());
    let states: Vec<&str> = report.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(states.len(), 3, "{report}");
    assert!(states.iter().all(|l| l.contains(" COMPLETED ")), "{report}");
    let kernels_s = t.elapsed();
    let via_slurm = std::fs::read_to_string(work.join("matrix.txt")).expect("matrix.txt");
    let out = Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .args([
            "run", "--repeat", "3", "--kernel", "host", "--kernel", "host", "--out",
        ])
        .arg(dir.join("direct"))
        .args(scenarios.split(' '))
        .output()
        .expect("run --kernel");
    assert!(out.status.success(), "{out:?}");
    let direct = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        matrix_shape(&via_slurm),
        matrix_shape(&direct),
        "matrix via Slurm:\n{via_slurm}\ndirect:\n{direct}"
    );

    // 3. A failed shard: the merge is cancelled (not left pending) and the report says
    // which shard failed and why, from its own stderr.
    let work = dir.join("fail");
    std::fs::create_dir_all(work.join("shards")).expect("mkdir");
    std::fs::write(work.join("shards/1"), "not a directory").expect("write");
    let ids = submit(
        &cluster,
        "submit-sweep.sh",
        &[
            ("TCPLAB_WORK", work.display().to_string()),
            ("TCPLAB_SHARDS", "2".into()),
            ("TCPLAB_REPEAT", "2".into()),
            ("TCPLAB_SCENARIO", scenario.display().to_string()),
            ("TCPLAB_VARY", "client.close_delay_ms=10,100".into()),
        ],
    );
    let (code, report) = cluster.wait(&ids);
    assert_eq!(code, Some(1), "{report}");
    let line = |id: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no line for {id} in\n{report}"))
    };
    assert!(
        line(&format!("{}_0", ids[0])).contains(" COMPLETED "),
        "{report}"
    );
    assert!(
        line(&format!("{}_1", ids[0])).contains(" FAILED "),
        "{report}"
    );
    assert!(line(&ids[1]).contains(" CANCELLED "), "{report}");
    assert!(report.contains("  stderr: tcplab: "), "{report}");
    assert!(report.contains("shards/1"), "{report}");
    assert!(
        report.contains("cancelled: a job it depends on failed"),
        "{report}"
    );
    assert!(!work.join("merged").exists());

    drop(cluster);
    let total = started.elapsed();
    eprintln!(
        "slurm: cluster up in {:.1} s; sweep pipeline (4 shards + merge) {:.1} s; kernel pipeline (2 columns + matrix) {:.1} s; total with teardown {:.1} s",
        up.as_secs_f64(),
        sweep_s.as_secs_f64(),
        kernels_s.as_secs_f64(),
        total.as_secs_f64()
    );
    assert_eq!(processes_in(&dir), Vec::<String>::new(), "left running");
    assert_eq!(system_state(), before, "files outside the temp dir changed");
}
