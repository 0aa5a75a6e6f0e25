global using System.Runtime.InteropServices;

// berthd is a Linux container engine: it stands on Linux system calls.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
