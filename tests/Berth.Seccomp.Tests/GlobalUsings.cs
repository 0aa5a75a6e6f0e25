global using Xunit;
global using Berth.Oci;
global using Berth.Seccomp.Tests.Support;
global using static Berth.Seccomp.Tests.Support.Profiles;
