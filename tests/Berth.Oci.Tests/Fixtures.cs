namespace Berth.Oci.Tests;

/// <summary>A bundle directory with a rootfs, deleted on dispose.</summary>
public sealed class TempBundle : IDisposable
{
    public TempBundle()
    {
        Dir = Path.Combine(Path.GetTempPath(), "berth-oci-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(Dir, "rootfs"));
    }

    public string Dir { get; }

    public string WriteConfig(string json)
    {
        var path = Path.Combine(Dir, "config.json");
        File.WriteAllText(path, json);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}

public static class Fixtures
{
    /// <summary>Every Linux field of the spec set to a non-default value; written as Berth writes it.</summary>
    public const string FullConfig = """
    {
      "ociVersion": "1.2.0",
      "process": {
        "terminal": true,
        "consoleSize": { "height": 25, "width": 80 },
        "user": { "uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "me" },
        "args": ["sh", "-c", "echo hi"],
        "commandLine": "sh -c 'echo hi'",
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
        "cwd": "/work",
        "capabilities": {
          "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"],
          "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        },
        "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024 } ],
        "noNewPrivileges": true,
        "apparmorProfile": "berth-default",
        "oomScoreAdj": -500,
        "scheduler": { "policy": "SCHED_DEADLINE", "nice": -5, "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK"], "runtime": 10, "deadline": 20, "period": 30 },
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 4 },
        "execCPUAffinity": { "initial": "0-1", "final": "2" }
      },
      "root": { "path": "rootfs", "readonly": true },
      "hostname": "box",
      "domainname": "example.org",
      "mounts": [
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "idmap"],
          "uidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
          "gidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ] }
      ],
      "hooks": {
        "prestart": [ { "path": "/usr/bin/hook", "args": ["hook", "prestart"], "env": ["A=1"], "timeout": 5 } ],
        "createRuntime": [ { "path": "/usr/bin/hook" } ],
        "createContainer": [ { "path": "/usr/bin/hook" } ],
        "startContainer": [ { "path": "/usr/bin/hook" } ],
        "poststart": [ { "path": "/usr/bin/hook" } ],
        "poststop": [ { "path": "/usr/bin/hook" } ]
      },
      "annotations": { "org.example.key": "value" },
      "linux": {
        "uidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
        "gidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
        "sysctl": { "net.ipv4.ip_forward": "1", "kernel.shmmax": "4096" },
        "resources": {
          "devices": [ { "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw" } ],
          "memory": { "limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 1, "kernelTCP": 2, "swappiness": 60,
                      "disableOOMKiller": false, "useHierarchy": true, "checkBeforeUpdate": true },
          "cpu": { "shares": 1024, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 950000,
                   "realtimePeriod": 1000000, "cpus": "0-3", "mems": "0", "idle": 0 },
          "pids": { "limit": 100 },
          "blockIO": {
            "weight": 500, "leafWeight": 300,
            "weightDevice": [ { "major": 8, "minor": 0, "weight": 600, "leafWeight": 200 } ],
            "throttleReadBpsDevice": [ { "major": 8, "minor": 0, "rate": 1048576 } ],
            "throttleWriteBpsDevice": [ { "major": 8, "minor": 0, "rate": 1048576 } ],
            "throttleReadIOPSDevice": [ { "major": 8, "minor": 0, "rate": 100 } ],
            "throttleWriteIOPSDevice": [ { "major": 8, "minor": 0, "rate": 100 } ]
          },
          "hugepageLimits": [ { "pageSize": "2MB", "limit": 209715200 } ],
          "network": { "classID": 1048577, "priorities": [ { "name": "eth0", "priority": 500 } ] },
          "rdma": { "mlx5_1": { "hcaHandles": 3, "hcaObjects": 10000 } },
          "unified": { "memory.high": "500M" }
        },
        "cgroupsPath": "/berth/abc",
        "namespaces": [
          { "type": "pid" }, { "type": "network" }, { "type": "mount" }, { "type": "ipc" },
          { "type": "uts" }, { "type": "user" }, { "type": "cgroup" }, { "type": "time" }
        ],
        "devices": [ { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0 } ],
        "netDevices": { "eth1": { "name": "ctr1" } },
        "seccomp": {
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
          "flags": ["SECCOMP_FILTER_FLAG_LOG"],
          "listenerPath": "/run/seccomp.sock",
          "listenerMetadata": "meta",
          "syscalls": [
            { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ" } ] },
            { "names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["bpf"], "action": "SCMP_ACT_NOTIFY" }
          ]
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "intelRdt": { "closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20", "schemata": ["L2:0=ff"],
                      "enableMonitoring": true },
        "memoryPolicy": { "mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"] },
        "personality": { "domain": "LINUX32", "flags": [] },
        "timeOffsets": { "monotonic": { "secs": 86400, "nanosecs": 500 }, "boottime": { "secs": -3600, "nanosecs": 0 } }
      }
    }
    """;

    /// <summary>A config that passes validation once its rootfs exists.</summary>
    public static Spec ValidSpec() => SpecTemplate.Default();
}
