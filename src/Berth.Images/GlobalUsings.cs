global using System.Runtime.InteropServices;

// Berth is a Linux container engine: everything here stands on Linux system calls.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
