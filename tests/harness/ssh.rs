//! A real sshd on 127.0.0.1 for remote-host tests and benchmarks.
//!
//! [`SshServer::start`] runs `/usr/sbin/sshd -D -e -f <temp sshd_config>` on a free port with a
//! generated host key, a temp `authorized_keys` holding a generated client key, `StrictModes no`,
//! `UsePAM no` and `PidFile none`, for the current user only; and writes a temp ssh config (passed
//! with `-F`) with these hosts:
//!
//! - [`HOST`] (`tltest`): the server, with the right key;
//! - [`BAD_KEY_HOST`]: the server, with a key it does not accept (refused authentication);
//! - [`CLOSED_HOST`]: a port on 127.0.0.1 nobody listens on (unreachable).
//!
//! ssh multiplexing sockets go to a private dir inside the temp dir. Dropping the server closes
//! those masters, kills sshd and every process it started (connections, remote commands), and
//! removes the dir. The remote tmux server is the caller's: run it with `-S` on a private socket
//! (the test's `TmuxServer`), never the user's default server.
//!
//! Running as root, sshd needs its privilege-separation dir `/run/sshd`: it is created (0755)
//! when missing, as the openssh-server package does at boot.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use termloom_tmux::TmuxOptions;
use termloom_tmux::client::SshOptions;

/// The ssh config host that reaches the server.
pub const HOST: &str = "tltest";
/// The ssh config host that offers a key the server refuses.
pub const BAD_KEY_HOST: &str = "tlbadkey";
/// The ssh config host on a closed port.
pub const CLOSED_HOST: &str = "tlclosed";

/// Where sshd lives (Debian, Ubuntu, Fedora, macOS).
pub fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Fails with an install hint when sshd or ssh is missing (a skip would hide a broken setup).
pub fn require_sshd() -> PathBuf {
    let ssh_ok = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ssh_ok,
        "ssh is not installed: run scripts/setup (or `apt-get install openssh-client`)"
    );
    sshd_path()
        .expect("sshd is not installed: run scripts/setup (or `apt-get install -y openssh-server`)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    let u = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!u.is_empty(), "cannot tell the current user name");
    u
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "termloom-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed for {}", path.display());
}

/// A private sshd on 127.0.0.1 and an ssh config to reach it.
pub struct SshServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The port sshd listens on.
    pub port: u16,
    /// The ssh client config (`ssh -F`).
    pub config: PathBuf,
    /// The private dir for ssh multiplexing sockets.
    pub control_dir: PathBuf,
    /// The user ssh logs in as (the current user).
    pub user: String,
}

impl SshServer {
    /// Starts sshd and waits until it listens (polling, with a deadline).
    pub fn start() -> SshServer {
        let sshd = require_sshd();
        if is_root() && !Path::new("/run/sshd").exists() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().mode(0o755).create("/run/sshd");
        }
        // Short path: ssh control sockets live in here.
        let dir = tempfile::Builder::new()
            .prefix(&format!("tls{}-", std::process::id()))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("id_key"));
        keygen(&d.join("bad_key"));
        std::fs::copy(d.join("id_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        // Where termloom puts them by default when `XDG_RUNTIME_DIR` is the temp dir (as for
        // the CLI in tests): `$XDG_RUNTIME_DIR/termloom-ssh`.
        let control_dir = d.join("termloom-ssh");
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&control_dir)
                .expect("control dir");
        }
        let user = current_user();
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let sshd_config = d.join("sshd_config");
            write_sshd_config(&sshd, &sshd_config, d, port, &user);
            let log = d.join("sshd.log");
            let log_file = std::fs::File::create(&log).expect("sshd log");
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&sshd_config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("start sshd");
            let deadline = Instant::now() + crate::timeout();
            let listening = loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Server listening on") {
                    break true;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    last_log = text;
                    break false;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sshd did not start listening in time; its log:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if !listening {
                // Most likely someone took the port between probing and binding: try another.
                continue;
            }
            let config = d.join("ssh_config");
            write_ssh_config(&config, d, port, free_port(), &user);
            return SshServer {
                port,
                config,
                control_dir,
                user,
                child: Some(child),
                dir,
            };
        }
        panic!("sshd would not start; its last log:\n{last_log}");
    }

    /// A value for `XDG_RUNTIME_DIR` that makes termloom's default ssh control dir this
    /// server's private one (for the CLI, which has no flag for it).
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The temp dir holding keys, configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What sshd logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// ssh options for this server: its config file, a short connect timeout, multiplexing into
    /// the private dir.
    pub fn ssh_options(&self) -> SshOptions {
        SshOptions {
            config: Some(self.config.clone()),
            connect_timeout: Duration::from_secs(5),
            control_dir: Some(self.control_dir.clone()),
            ..SshOptions::default()
        }
    }

    /// `base` (a private local tmux server's options: its `-S` socket, config, env, shell) driven
    /// through this sshd as host `host`. The remote side is this machine, so the remote tmux is
    /// that same private server.
    pub fn remote(&self, base: TmuxOptions, host: &str) -> TmuxOptions {
        TmuxOptions {
            host: Some(host.to_string()),
            ssh: self.ssh_options(),
            ..base
        }
    }

    /// The pid of sshd (the listener).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every process sshd started, transitively: one set per connection (the privileged monitor,
    /// the session process, the remote command).
    pub fn descendants(&self) -> Vec<u32> {
        self.pid().map(descendants_of).unwrap_or_default()
    }

    /// Drops every ssh connection at once by killing the sshd processes serving them (and what
    /// they run); the listener stays, so the next connection works. Returns how many were killed.
    pub fn drop_connections(&self) -> usize {
        let pids = self.descendants();
        for p in &pids {
            kill(*p);
        }
        pids.len()
    }

    /// Runs `ssh -F config ARGS` (for assertions), returning (status ok, stdout, stderr).
    pub fn ssh(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .args(["-o", "BatchMode=yes"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Closes the ssh multiplexing masters (`ssh -O exit`). ssh names a master by local host,
    /// remote host name, port and user (`%C`), not by the key offered: a later connection to the
    /// same account through another alias reuses it without authenticating again.
    pub fn close_masters(&self) {
        for host in [HOST, BAD_KEY_HOST] {
            let _ = Command::new("ssh")
                .arg("-F")
                .arg(&self.config)
                .arg("-o")
                .arg(format!("ControlPath={}/%C", self.control_dir.display()))
                .args(["-O", "exit", host])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn write_sshd_config(sshd: &Path, path: &Path, d: &Path, port: u16, user: &str) {
    let base = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_key\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PidFile none\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         AllowUsers {user}\n\
         X11Forwarding no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 100\n\
         MaxSessions 100\n\
         # Debian's bash reads ~/.bashrc for a command sshd runs when SHLVL < 2: the account's rc\n\
         # files (slow or chatty ones included) are not what these tests measure.\n\
         SetEnv SHLVL=1\n",
        d = d.display()
    );
    // OpenSSH 9.8+ penalizes addresses that fail to log in; the refused-auth test must not lock
    // 127.0.0.1 out. Older sshd refuses the unknown option, so it is added only when accepted.
    let with_penalties = format!("{base}PerSourcePenalties no\n");
    std::fs::write(path, &with_penalties).expect("sshd_config");
    let ok = Command::new(sshd)
        .arg("-t")
        .arg("-f")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        std::fs::write(path, &base).expect("sshd_config");
    }
}

fn write_ssh_config(path: &Path, d: &Path, port: u16, closed_port: u16, user: &str) {
    let host = |name: &str, port: u16, key: &str| {
        format!(
            "Host {name}\n  \
               HostName 127.0.0.1\n  \
               Port {port}\n  \
               User {user}\n  \
               IdentityFile {d}/{key}\n  \
               IdentitiesOnly yes\n  \
               IdentityAgent none\n  \
               UserKnownHostsFile {d}/known_hosts\n  \
               GlobalKnownHostsFile /dev/null\n  \
               StrictHostKeyChecking accept-new\n  \
               PasswordAuthentication no\n  \
               KbdInteractiveAuthentication no\n",
            d = d.display()
        )
    };
    let text = [
        host(HOST, port, "id_key"),
        host(BAD_KEY_HOST, port, "bad_key"),
        host(CLOSED_HOST, closed_port, "id_key"),
    ]
    .join("\n");
    std::fs::write(path, text).expect("ssh_config");
}

fn kill(pid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The parent of `pid`, from `/proc/PID/stat` (its command name may hold spaces and parens).
fn parent_of(pid: u32) -> Option<u32> {
    let mut s = String::new();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every process below `root`, children before grandchildren.
fn descendants_of(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| Some((p, parent_of(p)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (child, _) in all.iter().filter(|(_, pp)| *pp == p) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Errors are ignored: cleanup must never hide the test's own failure.
        // Everything sshd started is listed first: closing a master ends its connection's sshd
        // process, and what that ran (a remote `tmux -C` client) would then be reparented and
        // missed. Such a client, alive while its ssh pipes are gone, keeps tmux 3.3a's server
        // from ever exiting.
        let mut pids = self.descendants();
        self.close_masters();
        pids.extend(self.descendants());
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in pids {
            kill(p);
        }
    }
}
