namespace Berth.Seccomp.Tests.Cache;

public sealed class SeccompProgramStoreTests : IDisposable
{
    readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("berth-seccomp-store-").FullName, "store");
    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    static LinuxSeccomp Docker() => DockerDefaultProfile.For(DockerDefaultProfile.DefaultCapabilities, SeccompArch.X86_64);

    [Fact]
    public void A_second_process_reads_the_program_the_first_compiled()
    {
        var compiled = new SeccompProgramStore(_dir).GetOrCompile(Docker(), SeccompArch.X86_64);
        var file = Assert.Single(Directory.GetFiles(_dir));
        Assert.EndsWith(".bpf", file);
        Assert.Equal(Convert.ToString(0x1c0, 8), Convert.ToString((int)File.GetUnixFileMode(_dir), 8));

        // Change one instruction's constant in the stored file: the next store must return it,
        // which proves the program came from the file and was not compiled again.
        var bytes = File.ReadAllBytes(file);
        bytes[^1] ^= 0x55;
        File.WriteAllBytes(file, bytes);
        var read = new SeccompProgramStore(_dir).GetOrCompile(Docker(), SeccompArch.X86_64);

        Assert.Equal(compiled.Flags, read.Flags);
        Assert.Equal(compiled.SkippedArchitectures, read.SkippedArchitectures);
        Assert.Equal(compiled.Filter[..^1], read.Filter[..^1]);
        Assert.Equal(compiled.Filter[^1] ^ 0x55, read.Filter[^1]);
    }

    [Fact]
    public void The_same_profile_with_another_listener_shares_the_program()
    {
        var store = new SeccompProgramStore(_dir);
        var a = Docker();
        var b = Docker();
        b.ListenerPath = "/run/agent.sock";
        Assert.Equal(store.GetOrCompile(a, SeccompArch.X86_64).Filter, store.GetOrCompile(b, SeccompArch.X86_64).Filter);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("empty")]
    [InlineData("garbage")]
    [InlineData("other key")]
    [InlineData("bad filter length")]
    public void A_damaged_or_foreign_file_is_compiled_over(string damage)
    {
        var expected = SeccompCompiler.Compile(Docker(), SeccompArch.X86_64);
        var other = Section("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "read"));
        new SeccompProgramStore(_dir).GetOrCompile(Docker(), SeccompArch.X86_64);
        var file = Assert.Single(Directory.GetFiles(_dir));
        var bytes = File.ReadAllBytes(file);
        switch (damage)
        {
            case "truncated": File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]); break;
            case "empty": File.WriteAllBytes(file, []); break;
            case "garbage": File.WriteAllBytes(file, [.. Enumerable.Range(0, 4096).Select(i => (byte)i)]); break;
            case "other key":
                // What a hash collision would look like: another profile's file under this name.
                var otherKey = SeccompProgramStore.Key(SeccompProgramCache.Encode(other), SeccompArch.X86_64, stub: true);
                File.WriteAllBytes(file, SeccompProgramStore.Format(otherKey, SeccompCompiler.Compile(other, SeccompArch.X86_64)));
                break;
            case "bad filter length":
                var key = SeccompProgramStore.Key(SeccompProgramCache.Encode(Docker()), SeccompArch.X86_64, stub: true);
                var good = SeccompProgramStore.Format(key, expected);
                File.WriteAllBytes(file, good[..^3]); // the filter block says more bytes than follow
                break;
        }

        var program = new SeccompProgramStore(_dir).GetOrCompile(Docker(), SeccompArch.X86_64);

        Assert.Equal(expected.Filter, program.Filter);
        Assert.NotNull(SeccompProgramStore.Parse(File.ReadAllBytes(file), SeccompProgramStore.Key(SeccompProgramCache.Encode(Docker()), SeccompArch.X86_64, stub: true)));
    }

    [Fact]
    public void Another_architecture_or_option_is_another_program()
    {
        var store = new SeccompProgramStore(_dir);
        store.GetOrCompile(Docker(), SeccompArch.X86_64);
        store.GetOrCompile(Docker(), SeccompArch.Aarch64);
        store.GetOrCompile(Docker(), SeccompArch.X86_64, new SeccompCompileOptions { EnosysStub = false });
        Assert.Equal(3, Directory.GetFiles(_dir).Length);
    }

    [Fact]
    public void The_store_stays_bounded()
    {
        var store = new SeccompProgramStore(_dir, maxEntries: 3);
        for (uint errno = 1; errno <= 7; errno++)
            store.GetOrCompile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ERRNO", DefaultErrnoRet = errno, Syscalls = [Rule("SCMP_ACT_ALLOW", "read")] }, SeccompArch.X86_64);
        Assert.InRange(Directory.GetFiles(_dir).Length, 1, 3);
    }

    [Fact]
    public void An_unwritable_store_still_gives_the_program()
    {
        File.WriteAllText(_dir, "not a directory");
        var program = new SeccompProgramStore(Path.Combine(_dir, "sub")).GetOrCompile(Docker(), SeccompArch.X86_64);
        Assert.Equal(SeccompCompiler.Compile(Docker(), SeccompArch.X86_64).Filter, program.Filter);
        File.Delete(_dir);
    }

    /// <summary>The executable's GNU build ID as read from memory equals what readelf reads from its file (here the test host's).</summary>
    [Fact]
    public void The_build_id_read_from_memory_is_the_files()
    {
        string exe = Environment.ProcessPath!;
        var psi = new System.Diagnostics.ProcessStartInfo("readelf", ["-n", exe]) { RedirectStandardOutput = true };
        using var readelf = System.Diagnostics.Process.Start(psi)!;
        string notes = readelf.StandardOutput.ReadToEnd();
        readelf.WaitForExit();
        var match = System.Text.RegularExpressions.Regex.Match(notes, "Build ID: ([0-9a-f]+)");
        Assert.Equal(match.Success ? match.Groups[1].Value : null, ElfBuildId.Read());
        Assert.True(match.Success, $"{exe} has no build ID: the test proves nothing here");
    }
}
