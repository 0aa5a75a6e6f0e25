using System.Globalization;

namespace Berth.Oci;

/// <summary>Signal names as Docker's signal.ParseSignal takes them (kill, STOPSIGNAL, --stop-signal).</summary>
public static class Signals
{
    /// <summary>A number 1-64 or a Linux signal name, with or without SIG, in any case (RTMIN+n, RTMAX-n too).</summary>
    public static bool IsValid(string signal)
    {
        string s = signal.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? signal[3..] : signal;
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n is > 0 and <= 64;
        return s.ToUpperInvariant() is "HUP" or "INT" or "QUIT" or "ILL" or "TRAP" or "ABRT" or "IOT" or "BUS" or "FPE" or "KILL" or "USR1" or "SEGV"
            or "USR2" or "PIPE" or "ALRM" or "TERM" or "STKFLT" or "CHLD" or "CONT" or "STOP" or "TSTP" or "TTIN" or "TTOU" or "URG"
            or "XCPU" or "XFSZ" or "VTALRM" or "PROF" or "WINCH" or "IO" or "POLL" or "PWR" or "SYS" || s.StartsWith("RTMIN", StringComparison.OrdinalIgnoreCase) || s.StartsWith("RTMAX", StringComparison.OrdinalIgnoreCase);
    }
}
