// Prints Docker's default seccomp profile as an OCI linux.seccomp section (JSON) for the
// given bounding capabilities on this machine's architecture, from Berth.Seccomp's
// DockerDefaultProfile. bench/runtime-run.sh puts it into the "seccomp" bundles.
//
//   dotnet run bench/docker-seccomp.cs -- CAP_KILL CAP_AUDIT_WRITE ... > profile.json
#:project ../src/Berth.Seccomp/Berth.Seccomp.csproj
#:property PublishAot=false
using System.Text.Json;
using Berth.Oci;
using Berth.Seccomp;

var arch = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
{
    System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
    _ => SeccompArch.X86_64,
};
var section = DockerDefaultProfile.For(args, arch);
Console.WriteLine(JsonSerializer.Serialize(section, SpecJsonContext.Default.LinuxSeccomp));
