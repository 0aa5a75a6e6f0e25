namespace Berth.Oci;

/// <summary>
/// config.json read by hand over <see cref="StrictJsonReader"/>: the same model, names and rules
/// as <see cref="SpecJsonContext"/> (which still writes specs), without System.Text.Json's
/// metadata start-up cost in every runtime process. Tests hold the two to the same results
/// (tests/Berth.Oci.Tests/SpecReaderTests.cs).
/// </summary>
public static class SpecReader
{
    public static Spec ReadSpec(ref StrictJsonReader r)
    {
        var spec = new Spec();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "ociVersion": spec.OciVersion = r.String(); break;
                case "process": spec.Process = r.Nullable(ReadProcess); break;
                case "root": spec.Root = r.Nullable(ReadRoot); break;
                case "hostname": spec.Hostname = r.NullableString(); break;
                case "domainname": spec.Domainname = r.NullableString(); break;
                case "mounts": spec.Mounts = r.NullableList(ReadMount); break;
                case "hooks": spec.Hooks = r.Nullable(ReadHooks); break;
                case "annotations": spec.Annotations = r.NullableStringMap(); break;
                case "linux": spec.Linux = r.Nullable(ReadLinux); break;
                default: r.Skip(); break;
            }
        }
        return spec;
    }

    private static Root ReadRoot(ref StrictJsonReader r)
    {
        var root = new Root();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "path": root.Path = r.String(); break;
                case "readonly": root.Readonly = r.Boolean(); break;
                default: r.Skip(); break;
            }
        }
        return root;
    }

    private static Mount ReadMount(ref StrictJsonReader r)
    {
        var mount = new Mount();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "destination": mount.Destination = r.String(); break;
                case "type": mount.Type = r.NullableString(); break;
                case "source": mount.Source = r.NullableString(); break;
                case "options": mount.Options = r.NullableStringList(); break;
                case "uidMappings": mount.UidMappings = r.NullableList(ReadIdMapping); break;
                case "gidMappings": mount.GidMappings = r.NullableList(ReadIdMapping); break;
                default: r.Skip(); break;
            }
        }
        return mount;
    }

    public static Hooks ReadHooks(ref StrictJsonReader r)
    {
        var hooks = new Hooks();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "prestart": hooks.Prestart = r.NullableList(ReadHook); break;
                case "createRuntime": hooks.CreateRuntime = r.NullableList(ReadHook); break;
                case "createContainer": hooks.CreateContainer = r.NullableList(ReadHook); break;
                case "startContainer": hooks.StartContainer = r.NullableList(ReadHook); break;
                case "poststart": hooks.Poststart = r.NullableList(ReadHook); break;
                case "poststop": hooks.Poststop = r.NullableList(ReadHook); break;
                default: r.Skip(); break;
            }
        }
        return hooks;
    }

    private static Hook ReadHook(ref StrictJsonReader r)
    {
        var hook = new Hook();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "path": hook.Path = r.String(); break;
                case "args": hook.Args = r.NullableStringList(); break;
                case "env": hook.Env = r.NullableStringList(); break;
                case "timeout": hook.Timeout = r.NullableInt32(); break;
                default: r.Skip(); break;
            }
        }
        return hook;
    }

    public static Process ReadProcess(ref StrictJsonReader r)
    {
        var process = new Process();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "terminal": process.Terminal = r.Boolean(); break;
                case "consoleSize": process.ConsoleSize = r.Nullable(ReadConsoleSize); break;
                case "user": process.User = r.IsNull ? throw r.Error("must not be null") : ReadUser(ref r); break;
                case "args": process.Args = r.NullableStringList(); break;
                case "commandLine": process.CommandLine = r.NullableString(); break;
                case "env": process.Env = r.NullableStringList(); break;
                case "cwd": process.Cwd = r.String(); break;
                case "capabilities": process.Capabilities = r.Nullable(ReadCapabilities); break;
                case "rlimits": process.Rlimits = r.NullableList(ReadRlimit); break;
                case "noNewPrivileges": process.NoNewPrivileges = r.Boolean(); break;
                case "apparmorProfile": process.ApparmorProfile = r.NullableString(); break;
                case "oomScoreAdj": process.OomScoreAdj = r.NullableInt32(); break;
                case "scheduler": process.Scheduler = r.Nullable(ReadScheduler); break;
                case "selinuxLabel": process.SelinuxLabel = r.NullableString(); break;
                case "ioPriority": process.IoPriority = r.Nullable(ReadIoPriority); break;
                case "execCPUAffinity": process.ExecCpuAffinity = r.Nullable(ReadCpuAffinity); break;
                default: r.Skip(); break;
            }
        }
        return process;
    }

    private static ConsoleSize ReadConsoleSize(ref StrictJsonReader r)
    {
        var size = new ConsoleSize();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "height": size.Height = r.UInt32(); break;
                case "width": size.Width = r.UInt32(); break;
                default: r.Skip(); break;
            }
        }
        return size;
    }

    private static User ReadUser(ref StrictJsonReader r)
    {
        var user = new User();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "uid": user.Uid = r.UInt32(); break;
                case "gid": user.Gid = r.UInt32(); break;
                case "umask": user.Umask = r.NullableUInt32(); break;
                case "additionalGids": user.AdditionalGids = r.NullableUInt32List(); break;
                case "username": user.Username = r.NullableString(); break;
                default: r.Skip(); break;
            }
        }
        return user;
    }

    private static LinuxCapabilities ReadCapabilities(ref StrictJsonReader r)
    {
        var caps = new LinuxCapabilities();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "bounding": caps.Bounding = r.NullableStringList(); break;
                case "effective": caps.Effective = r.NullableStringList(); break;
                case "inheritable": caps.Inheritable = r.NullableStringList(); break;
                case "permitted": caps.Permitted = r.NullableStringList(); break;
                case "ambient": caps.Ambient = r.NullableStringList(); break;
                default: r.Skip(); break;
            }
        }
        return caps;
    }

    private static PosixRlimit ReadRlimit(ref StrictJsonReader r)
    {
        var rlimit = new PosixRlimit();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "type": rlimit.Type = r.String(); break;
                case "hard": rlimit.Hard = r.UInt64(); break;
                case "soft": rlimit.Soft = r.UInt64(); break;
                default: r.Skip(); break;
            }
        }
        return rlimit;
    }

    private static Scheduler ReadScheduler(ref StrictJsonReader r)
    {
        var scheduler = new Scheduler();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "policy": scheduler.Policy = r.String(); break;
                case "nice": scheduler.Nice = r.NullableInt32(); break;
                case "priority": scheduler.Priority = r.NullableInt32(); break;
                case "flags": scheduler.Flags = r.NullableStringList(); break;
                case "runtime": scheduler.Runtime = r.NullableUInt64(); break;
                case "deadline": scheduler.Deadline = r.NullableUInt64(); break;
                case "period": scheduler.Period = r.NullableUInt64(); break;
                default: r.Skip(); break;
            }
        }
        return scheduler;
    }

    private static IoPriority ReadIoPriority(ref StrictJsonReader r)
    {
        var priority = new IoPriority();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "class": priority.Class = r.String(); break;
                case "priority": priority.Priority = r.Int32(); break;
                default: r.Skip(); break;
            }
        }
        return priority;
    }

    private static CpuAffinity ReadCpuAffinity(ref StrictJsonReader r)
    {
        var affinity = new CpuAffinity();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "initial": affinity.Initial = r.NullableString(); break;
                case "final": affinity.Final = r.NullableString(); break;
                default: r.Skip(); break;
            }
        }
        return affinity;
    }

    private static Linux ReadLinux(ref StrictJsonReader r)
    {
        var linux = new Linux();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "uidMappings": linux.UidMappings = r.NullableList(ReadIdMapping); break;
                case "gidMappings": linux.GidMappings = r.NullableList(ReadIdMapping); break;
                case "sysctl": linux.Sysctl = r.NullableStringMap(); break;
                case "resources": linux.Resources = r.Nullable(ReadResources); break;
                case "cgroupsPath": linux.CgroupsPath = r.NullableString(); break;
                case "namespaces": linux.Namespaces = r.NullableList(ReadNamespace); break;
                case "devices": linux.Devices = r.NullableList(ReadDevice); break;
                case "netDevices": linux.NetDevices = r.NullableMap(ReadNetDevice); break;
                case "seccomp": linux.Seccomp = r.Nullable(ReadSeccomp); break;
                case "rootfsPropagation": linux.RootfsPropagation = r.NullableString(); break;
                case "maskedPaths": linux.MaskedPaths = r.NullableStringList(); break;
                case "readonlyPaths": linux.ReadonlyPaths = r.NullableStringList(); break;
                case "mountLabel": linux.MountLabel = r.NullableString(); break;
                case "intelRdt": linux.IntelRdt = r.Nullable(ReadIntelRdt); break;
                case "memoryPolicy": linux.MemoryPolicy = r.Nullable(ReadMemoryPolicy); break;
                case "personality": linux.Personality = r.Nullable(ReadPersonality); break;
                case "timeOffsets": linux.TimeOffsets = r.NullableMap(ReadTimeOffset); break;
                default: r.Skip(); break;
            }
        }
        return linux;
    }

    private static LinuxIdMapping ReadIdMapping(ref StrictJsonReader r)
    {
        var mapping = new LinuxIdMapping();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "containerID": mapping.ContainerId = r.UInt32(); break;
                case "hostID": mapping.HostId = r.UInt32(); break;
                case "size": mapping.Size = r.UInt32(); break;
                default: r.Skip(); break;
            }
        }
        return mapping;
    }

    private static LinuxNamespace ReadNamespace(ref StrictJsonReader r)
    {
        var ns = new LinuxNamespace();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "type": ns.Type = r.String(); break;
                case "path": ns.Path = r.NullableString(); break;
                default: r.Skip(); break;
            }
        }
        return ns;
    }

    private static LinuxDevice ReadDevice(ref StrictJsonReader r)
    {
        var device = new LinuxDevice();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "path": device.Path = r.String(); break;
                case "type": device.Type = r.String(); break;
                case "major": device.Major = r.NullableInt64(); break;
                case "minor": device.Minor = r.NullableInt64(); break;
                case "fileMode": device.FileMode = r.NullableUInt32(); break;
                case "uid": device.Uid = r.NullableUInt32(); break;
                case "gid": device.Gid = r.NullableUInt32(); break;
                default: r.Skip(); break;
            }
        }
        return device;
    }

    private static LinuxNetDevice ReadNetDevice(ref StrictJsonReader r)
    {
        var device = new LinuxNetDevice();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            if (name == "name") device.Name = r.NullableString();
            else r.Skip();
        }
        return device;
    }

    private static LinuxTimeOffset ReadTimeOffset(ref StrictJsonReader r)
    {
        var offset = new LinuxTimeOffset();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "secs": offset.Secs = r.Int64(); break;
                case "nanosecs": offset.Nanosecs = r.UInt32(); break;
                default: r.Skip(); break;
            }
        }
        return offset;
    }

    private static LinuxSeccomp ReadSeccomp(ref StrictJsonReader r)
    {
        var seccomp = new LinuxSeccomp();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "defaultAction": seccomp.DefaultAction = r.String(); break;
                case "defaultErrnoRet": seccomp.DefaultErrnoRet = r.NullableUInt32(); break;
                case "architectures": seccomp.Architectures = r.NullableStringList(); break;
                case "flags": seccomp.Flags = r.NullableStringList(); break;
                case "listenerPath": seccomp.ListenerPath = r.NullableString(); break;
                case "listenerMetadata": seccomp.ListenerMetadata = r.NullableString(); break;
                case "syscalls": seccomp.Syscalls = r.NullableList(ReadSyscall); break;
                default: r.Skip(); break;
            }
        }
        return seccomp;
    }

    private static LinuxSyscall ReadSyscall(ref StrictJsonReader r)
    {
        var syscall = new LinuxSyscall();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "names": syscall.Names = r.StringList(); break;
                case "action": syscall.Action = r.String(); break;
                case "errnoRet": syscall.ErrnoRet = r.NullableUInt32(); break;
                case "args": syscall.Args = r.NullableList(ReadSeccompArg); break;
                default: r.Skip(); break;
            }
        }
        return syscall;
    }

    private static LinuxSeccompArg ReadSeccompArg(ref StrictJsonReader r)
    {
        var arg = new LinuxSeccompArg();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "index": arg.Index = r.UInt32(); break;
                case "value": arg.Value = r.UInt64(); break;
                case "valueTwo": arg.ValueTwo = r.NullableUInt64(); break;
                case "op": arg.Op = r.String(); break;
                default: r.Skip(); break;
            }
        }
        return arg;
    }

    private static LinuxIntelRdt ReadIntelRdt(ref StrictJsonReader r)
    {
        var rdt = new LinuxIntelRdt();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "closID": rdt.ClosId = r.NullableString(); break;
                case "l3CacheSchema": rdt.L3CacheSchema = r.NullableString(); break;
                case "memBwSchema": rdt.MemBwSchema = r.NullableString(); break;
                case "schemata": rdt.Schemata = r.NullableStringList(); break;
                case "enableMonitoring": rdt.EnableMonitoring = r.NullableBoolean(); break;
                case "enableCMT": rdt.EnableCmt = r.NullableBoolean(); break;
                case "enableMBM": rdt.EnableMbm = r.NullableBoolean(); break;
                default: r.Skip(); break;
            }
        }
        return rdt;
    }

    private static LinuxMemoryPolicy ReadMemoryPolicy(ref StrictJsonReader r)
    {
        var policy = new LinuxMemoryPolicy();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "mode": policy.Mode = r.String(); break;
                case "nodes": policy.Nodes = r.NullableString(); break;
                case "flags": policy.Flags = r.NullableStringList(); break;
                default: r.Skip(); break;
            }
        }
        return policy;
    }

    private static LinuxPersonality ReadPersonality(ref StrictJsonReader r)
    {
        var personality = new LinuxPersonality();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "domain": personality.Domain = r.String(); break;
                case "flags": personality.Flags = r.NullableStringList(); break;
                default: r.Skip(); break;
            }
        }
        return personality;
    }

    public static LinuxResources ReadResources(ref StrictJsonReader r)
    {
        var resources = new LinuxResources();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "devices": resources.Devices = r.NullableList(ReadDeviceCgroup); break;
                case "memory": resources.Memory = r.Nullable(ReadMemory); break;
                case "cpu": resources.Cpu = r.Nullable(ReadCpu); break;
                case "pids": resources.Pids = r.Nullable(ReadPids); break;
                case "blockIO": resources.BlockIo = r.Nullable(ReadBlockIo); break;
                case "hugepageLimits": resources.HugepageLimits = r.NullableList(ReadHugepageLimit); break;
                case "network": resources.Network = r.Nullable(ReadNetwork); break;
                case "rdma": resources.Rdma = r.NullableMap(ReadRdma); break;
                case "unified": resources.Unified = r.NullableStringMap(); break;
                default: r.Skip(); break;
            }
        }
        return resources;
    }

    private static LinuxDeviceCgroup ReadDeviceCgroup(ref StrictJsonReader r)
    {
        var device = new LinuxDeviceCgroup();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "allow": device.Allow = r.Boolean(); break;
                case "type": device.Type = r.NullableString(); break;
                case "major": device.Major = r.NullableInt64(); break;
                case "minor": device.Minor = r.NullableInt64(); break;
                case "access": device.Access = r.NullableString(); break;
                default: r.Skip(); break;
            }
        }
        return device;
    }

    private static LinuxMemory ReadMemory(ref StrictJsonReader r)
    {
        var memory = new LinuxMemory();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "limit": memory.Limit = r.NullableInt64(); break;
                case "reservation": memory.Reservation = r.NullableInt64(); break;
                case "swap": memory.Swap = r.NullableInt64(); break;
                case "kernel": memory.Kernel = r.NullableInt64(); break;
                case "kernelTCP": memory.KernelTcp = r.NullableInt64(); break;
                case "swappiness": memory.Swappiness = r.NullableUInt64(); break;
                case "disableOOMKiller": memory.DisableOomKiller = r.NullableBoolean(); break;
                case "useHierarchy": memory.UseHierarchy = r.NullableBoolean(); break;
                case "checkBeforeUpdate": memory.CheckBeforeUpdate = r.NullableBoolean(); break;
                default: r.Skip(); break;
            }
        }
        return memory;
    }

    private static LinuxCpu ReadCpu(ref StrictJsonReader r)
    {
        var cpu = new LinuxCpu();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "shares": cpu.Shares = r.NullableUInt64(); break;
                case "quota": cpu.Quota = r.NullableInt64(); break;
                case "burst": cpu.Burst = r.NullableUInt64(); break;
                case "period": cpu.Period = r.NullableUInt64(); break;
                case "realtimeRuntime": cpu.RealtimeRuntime = r.NullableInt64(); break;
                case "realtimePeriod": cpu.RealtimePeriod = r.NullableUInt64(); break;
                case "cpus": cpu.Cpus = r.NullableString(); break;
                case "mems": cpu.Mems = r.NullableString(); break;
                case "idle": cpu.Idle = r.NullableInt64(); break;
                default: r.Skip(); break;
            }
        }
        return cpu;
    }

    private static LinuxPids ReadPids(ref StrictJsonReader r)
    {
        var pids = new LinuxPids();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            if (name == "limit") pids.Limit = r.NullableInt64();
            else r.Skip();
        }
        return pids;
    }

    private static LinuxBlockIo ReadBlockIo(ref StrictJsonReader r)
    {
        var io = new LinuxBlockIo();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "weight": io.Weight = r.NullableUInt16(); break;
                case "leafWeight": io.LeafWeight = r.NullableUInt16(); break;
                case "weightDevice": io.WeightDevice = r.NullableList(ReadWeightDevice); break;
                case "throttleReadBpsDevice": io.ThrottleReadBpsDevice = r.NullableList(ReadThrottleDevice); break;
                case "throttleWriteBpsDevice": io.ThrottleWriteBpsDevice = r.NullableList(ReadThrottleDevice); break;
                case "throttleReadIOPSDevice": io.ThrottleReadIopsDevice = r.NullableList(ReadThrottleDevice); break;
                case "throttleWriteIOPSDevice": io.ThrottleWriteIopsDevice = r.NullableList(ReadThrottleDevice); break;
                default: r.Skip(); break;
            }
        }
        return io;
    }

    private static LinuxWeightDevice ReadWeightDevice(ref StrictJsonReader r)
    {
        var device = new LinuxWeightDevice();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "major": device.Major = r.Int64(); break;
                case "minor": device.Minor = r.Int64(); break;
                case "weight": device.Weight = r.NullableUInt16(); break;
                case "leafWeight": device.LeafWeight = r.NullableUInt16(); break;
                default: r.Skip(); break;
            }
        }
        return device;
    }

    private static LinuxThrottleDevice ReadThrottleDevice(ref StrictJsonReader r)
    {
        var device = new LinuxThrottleDevice();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "major": device.Major = r.Int64(); break;
                case "minor": device.Minor = r.Int64(); break;
                case "rate": device.Rate = r.UInt64(); break;
                default: r.Skip(); break;
            }
        }
        return device;
    }

    private static LinuxHugepageLimit ReadHugepageLimit(ref StrictJsonReader r)
    {
        var limit = new LinuxHugepageLimit();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "pageSize": limit.PageSize = r.String(); break;
                case "limit": limit.Limit = r.UInt64(); break;
                default: r.Skip(); break;
            }
        }
        return limit;
    }

    private static LinuxNetwork ReadNetwork(ref StrictJsonReader r)
    {
        var network = new LinuxNetwork();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "classID": network.ClassId = r.NullableUInt32(); break;
                case "priorities": network.Priorities = r.NullableList(ReadInterfacePriority); break;
                default: r.Skip(); break;
            }
        }
        return network;
    }

    private static LinuxInterfacePriority ReadInterfacePriority(ref StrictJsonReader r)
    {
        var priority = new LinuxInterfacePriority();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "name": priority.Name = r.String(); break;
                case "priority": priority.Priority = r.UInt32(); break;
                default: r.Skip(); break;
            }
        }
        return priority;
    }

    private static LinuxRdma ReadRdma(ref StrictJsonReader r)
    {
        var rdma = new LinuxRdma();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "hcaHandles": rdma.HcaHandles = r.NullableUInt32(); break;
                case "hcaObjects": rdma.HcaObjects = r.NullableUInt32(); break;
                default: r.Skip(); break;
            }
        }
        return rdma;
    }
}
