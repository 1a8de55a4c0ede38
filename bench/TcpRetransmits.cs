namespace ManaSync.Bench;

/// <summary>
/// TCP segments the machine retransmitted (RetransSegs of /proc/net/snmp). All of a benchmark's traffic
/// is loopback, which should never need a retransmission; where it does, TCP's backoff turns each loss
/// into a stall of 0.2 s, then 0.4, 0.8, … — a fact about the machine, printed beside the latencies.
/// </summary>
public static class TcpRetransmits
{
    public static long Total()
    {
        var lines = File.ReadAllLines("/proc/net/snmp").Where(line => line.StartsWith("Tcp:")).ToList();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, "RetransSegs")]);
    }
}
