//! Berth's own default-deny seccomp profile.
//!
//! Everything not listed fails with `EPERM`. The allowlist is what ordinary
//! programs (shells, language runtimes, servers, package managers) call,
//! written from the Linux syscall tables; names a given architecture lacks
//! are ignored by the runtime. Syscalls that reach kernel state shared with
//! the host, or that only matter with a capability the container lacks, are
//! either never allowed or allowed only when that capability is effective.

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

use super::{arch_info, normalize_cap};

/// The default action's errno.
const EPERM: u32 = 1;
/// What `clone3` answers without `CAP_SYS_ADMIN`: its flags live in a
/// struct seccomp cannot inspect, so it is refused with ENOSYS and glibc
/// falls back to `clone`, whose flags are checked.
const ENOSYS: u32 = 38;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`: `clone` may not create
/// namespaces without `CAP_SYS_ADMIN`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality(2)` values allowed: `PER_LINUX`, `PER_LINUX32`,
/// `UNAME26`, `PER_LINUX32|UNAME26` and the query `0xffffffff`.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Allowed for every container.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // file descriptors and I/O
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "preadv2", "pwritev", "pwritev2", "open",
    "openat", "openat2", "creat", "close", "close_range", "lseek", "_llseek", "dup", "dup2", "dup3", "pipe", "pipe2",
    "fcntl", "fcntl64", "ioctl", "flock", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
    "sync_file_range2", "arm_sync_file_range", "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
    "fadvise64", "fadvise64_64", "arm_fadvise64_64", "readahead", "sendfile", "sendfile64", "splice", "tee",
    "vmsplice", "copy_file_range", "cachestat",
    // file metadata and directories
    "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "newfstatat", "fstatat64", "statx", "statfs",
    "statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents",
    "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "mknod", "mknodat", "chmod", "fchmod",
    "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32", "umask",
    "utime", "utimes", "utimensat", "utimensat_time64", "futimesat", "name_to_handle_at",
    // extended attributes
    "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "listxattr", "llistxattr", "flistxattr", "listxattrat", "removexattr", "lremovexattr", "fremovexattr",
    "removexattrat",
    // file change notification
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
    // memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock", "mlock2",
    "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier", "memfd_create", "memfd_secret",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node",
    "map_shadow_stack", "mseal",
    // processes and threads (clone is below, with its flags checked)
    "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid", "getpid", "getppid",
    "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "prctl", "arch_prctl", "capget", "capset", "getrlimit", "setrlimit", "ugetrlimit",
    "prlimit64", "getrusage", "times", "getpriority", "setpriority", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_getattr", "sched_setattr", "ioprio_get", "ioprio_set", "getcpu", "restart_syscall", "seccomp",
    "set_thread_area", "get_thread_area", "set_tls", "get_tls",
    // credentials
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid", "setreuid",
    "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "getuid32", "geteuid32", "getgid32",
    "getegid32", "getresuid32", "getresgid32", "getgroups32", "setuid32", "setgid32", "setreuid32", "setregid32",
    "setresuid32", "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaction", "sigprocmask", "sigreturn",
    "sigpending", "sigsuspend", "signal", "sigaltstack", "kill", "tkill", "tgkill", "pause", "alarm", "signalfd",
    "signalfd4", "pidfd_open", "pidfd_send_signal",
    // time (reading it; setting it is gated below)
    "nanosleep", "clock_nanosleep", "clock_nanosleep_time64", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "gettimeofday", "time", "getitimer", "setitimer", "timer_create", "timer_delete",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timer_getoverrun", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "adjtimex", "clock_adjtime",
    "clock_adjtime64",
    // waiting
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "futex",
    "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
    // sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
    "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "recvmmsg_time64", "shutdown", "send", "recv", "socketcall",
    // System V and POSIX IPC (in the container's IPC namespace)
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
    // asynchronous I/O (io_uring stays denied: a large attack surface seccomp cannot see into)
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    // system information and sandboxing
    "uname", "sysinfo", "getrandom", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    // architecture-specific
    "breakpoint", "cacheflush", "riscv_flush_icache", "riscv_hwprobe", "s390_pci_mmio_read", "s390_pci_mmio_write",
    "s390_runtime_instr",
];

/// Allowed only when one of the capabilities is effective; the kernel would
/// refuse most of them anyway, the filter removes the attack surface.
#[rustfmt::skip]
const GATED: &[(&[&str], &[&str])] = &[
    (&["CAP_SYS_ADMIN"], &[
        "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
        "fspick", "pivot_root", "unshare", "setns", "clone3", "sethostname", "setdomainname", "quotactl",
        "quotactl_fd", "fanotify_init", "lookup_dcookie", "swapon", "swapoff",
    ]),
    (&["CAP_SYS_ADMIN", "CAP_BPF"], &["bpf"]),
    (&["CAP_SYS_ADMIN", "CAP_PERFMON"], &["perf_event_open"]),
    (&["CAP_SYS_PTRACE"], &[
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise", "userfaultfd",
    ]),
    (&["CAP_SYS_MODULE"], &["init_module", "finit_module", "delete_module"]),
    (&["CAP_SYS_BOOT"], &["reboot"]),
    (&["CAP_SYS_RAWIO"], &["iopl", "ioperm"]),
    (&["CAP_SYS_PACCT"], &["acct"]),
    (&["CAP_SYS_TIME"], &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    (&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
    (&["CAP_SYSLOG"], &["syslog"]),
    (&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    (&["CAP_SYS_NICE"], &["move_pages", "migrate_pages"]),
    (&["CAP_SYS_CHROOT"], &["chroot"]),
];

/// Never allowed, whatever the capabilities (listed for documentation and
/// tests; the default action denies them): host-wide keyrings, kexec,
/// io_uring and obsolete or unsafe interfaces.
#[rustfmt::skip]
pub const NEVER_ALLOWED: &[&str] = &[
    "kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "uselib", "nfsservctl", "vm86", "vm86old", "create_module", "get_kernel_syms",
    "query_module", "_sysctl", "sysfs", "ustat", "modify_ldt", "bdflush", "uretprobe",
];

fn rule(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names);
    r.set_action(action);
    r.set_errno_ret(errno);
    r.set_args(Some(args).filter(|a| !a.is_empty()));
    r
}

fn arg(index: usize, value: u64, value_two: Option<u64>, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    let mut b = LinuxSeccompArgBuilder::default().index(index).value(value).op(op);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    // The builder defaults every field, so it cannot fail.
    b.build().expect("LinuxSeccompArg fields all have defaults")
}

/// Berth's default profile for a container with capabilities `caps` (any
/// spelling) on `arch` (`x86_64`, `aarch64`, ...; an unknown arch leaves
/// the architecture list empty, which means the native one only).
pub fn default_seccomp(caps: &[String], arch: &str) -> LinuxSeccomp {
    let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
    let has = |c: &str| caps.iter().any(|x| x == c);
    let sys_admin = has("CAP_SYS_ADMIN");

    let mut allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
    for (gate, names) in GATED {
        if gate.iter().any(|c| has(c)) {
            allowed.extend(names.iter().map(|s| s.to_string()));
        }
    }
    if sys_admin {
        allowed.push("clone".to_string());
    }
    allowed.sort();
    allowed.dedup();

    let allow = LinuxSeccompAction::ScmpActAllow;
    let mut rules = vec![rule(allowed, allow, None, vec![])];
    for p in PERSONALITIES {
        rules.push(rule(
            vec!["personality".into()],
            allow,
            None,
            vec![arg(0, p, None, LinuxSeccompOperator::ScmpCmpEq)],
        ));
    }
    if !sys_admin {
        let flags_arg = arch_info(arch).map_or(0, |a| a.clone_flags_arg);
        rules.push(rule(
            vec!["clone".into()],
            allow,
            None,
            vec![arg(flags_arg, CLONE_NAMESPACE_FLAGS, Some(0), LinuxSeccompOperator::ScmpCmpMaskedEq)],
        ));
        rules.push(rule(vec!["clone3".into()], LinuxSeccompAction::ScmpActErrno, Some(ENOSYS), vec![]));
    }

    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno);
    s.set_default_errno_ret(Some(EPERM));
    s.set_architectures(arch_info(arch).map(|info| [&[info.native][..], info.subs].concat()));
    s.set_syscalls(Some(rules));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_CAPS;

    fn default_caps() -> Vec<String> {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    }

    /// The action the filter takes for `name` when its arguments match no
    /// conditional rule: Some(action, errno) of the unconditional rule.
    fn unconditional(s: &LinuxSeccomp, name: &str) -> Option<(LinuxSeccompAction, Option<u32>)> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|r| r.args().is_none() && r.names().iter().any(|n| n == name))
            .map(|r| (r.action(), r.errno_ret()))
    }

    fn allowed(s: &LinuxSeccomp, name: &str) -> bool {
        unconditional(s, name).map(|(a, _)| a) == Some(LinuxSeccompAction::ScmpActAllow)
    }

    #[test]
    fn denies_by_default_with_eperm() {
        let s = default_seccomp(&default_caps(), "x86_64");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
    }

    #[test]
    fn allows_what_programs_need() {
        let s = default_seccomp(&default_caps(), "x86_64");
        for name in [
            "read",
            "write",
            "openat",
            "close",
            "execve",
            "exit_group",
            "mmap",
            "futex",
            "epoll_wait",
            "socket",
            "connect",
            "wait4",
            "rt_sigaction",
            "brk",
            "chroot",
            "statx",
            "getrandom",
        ] {
            assert!(allowed(&s, name), "{name} must be allowed");
        }
    }

    #[test]
    fn denies_dangerous_syscalls_with_default_caps() {
        let s = default_seccomp(&default_caps(), "x86_64");
        for name in [
            "mount",
            "umount2",
            "reboot",
            "ptrace",
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "swapon",
            "swapoff",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "setns",
            "pivot_root",
            "open_by_handle_at",
            "userfaultfd",
            "iopl",
            "ioperm",
            "acct",
            "settimeofday",
            "clock_settime",
            "io_uring_setup",
            "process_vm_readv",
            "syslog",
        ] {
            assert!(unconditional(&s, name).is_none(), "{name} must fall to the default action");
        }
    }

    #[test]
    fn clone_cannot_make_namespaces_and_clone3_is_enosys() {
        let s = default_seccomp(&default_caps(), "x86_64");
        assert!(unconditional(&s, "clone").is_none());
        let clone = s.syscalls().as_ref().unwrap().iter().find(|r| r.names() == &vec!["clone".to_string()]).unwrap();
        let a = clone.args().as_ref().unwrap()[0];
        assert_eq!(
            (a.index(), a.value(), a.value_two(), a.op()),
            (0, CLONE_NAMESPACE_FLAGS, Some(0), LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        assert_eq!(unconditional(&s, "clone3"), Some((LinuxSeccompAction::ScmpActErrno, Some(38))));
        // On s390x the flags are the second argument.
        let s = default_seccomp(&default_caps(), "s390x");
        let clone = s.syscalls().as_ref().unwrap().iter().find(|r| r.names() == &vec!["clone".to_string()]).unwrap();
        assert_eq!(clone.args().as_ref().unwrap()[0].index(), 1);
    }

    #[test]
    fn capabilities_open_their_gates() {
        let mut caps = default_caps();
        caps.push("SYS_ADMIN".into());
        caps.push("cap_sys_ptrace".into());
        let s = default_seccomp(&caps, "x86_64");
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "clone",
            "clone3",
            "bpf",
            "ptrace",
            "process_vm_readv",
        ] {
            assert!(allowed(&s, name), "{name} must be allowed with SYS_ADMIN/SYS_PTRACE");
        }
        assert!(s.syscalls().as_ref().unwrap().iter().all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        for name in NEVER_ALLOWED {
            assert!(unconditional(&s, name).is_none(), "{name} is never allowed");
        }
        let all: Vec<String> = crate::caps::ALL_CAPS.iter().map(|s| s.to_string()).collect();
        let s = default_seccomp(&all, "x86_64");
        for name in NEVER_ALLOWED {
            assert!(unconditional(&s, name).is_none(), "{name} is never allowed, even with every cap");
        }
        assert!(allowed(&s, "reboot") && allowed(&s, "init_module") && allowed(&s, "open_by_handle_at"));
    }

    #[test]
    fn dropping_sys_chroot_closes_chroot() {
        let s = default_seccomp(&[], "x86_64");
        assert!(!allowed(&s, "chroot"));
        assert!(allowed(&s, "read"));
    }

    #[test]
    fn lists_are_disjoint_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        let gated = GATED.iter().flat_map(|(_, n)| n.iter());
        for name in ALLOWED.iter().chain(gated).chain(NEVER_ALLOWED) {
            assert!(seen.insert(*name), "{name} is listed twice");
        }
        assert!(!ALLOWED.contains(&"clone") && !ALLOWED.contains(&"personality"));
    }

    #[test]
    fn architectures_follow_the_host() {
        let s = default_seccomp(&[], "x86_64");
        assert_eq!(s.architectures().as_ref().unwrap().len(), 3);
        let s = default_seccomp(&[], "vax");
        assert!(s.architectures().is_none());
    }
}
