namespace ManaSync.Bench;

/// <summary>
/// The machine's TCP counters that tell lost traffic from mere probing. All of a benchmark's traffic is
/// loopback. A tail-loss probe is sent when an acknowledgement is late (on two busy cores it often is)
/// and costs nothing; a retransmission timeout or a dropped connection attempt (listen-queue overflow)
/// stalls the connection for 0.2–1 s and more, doubling each time.
/// </summary>
public sealed record TcpCounters(long Retransmitted, long LossProbes, long Timeouts, long ListenOverflows)
{
    public static TcpCounters Read()
    {
        var snmp = Counters("/proc/net/snmp", "Tcp:");
        var extended = Counters("/proc/net/netstat", "TcpExt:");
        return new TcpCounters(snmp["RetransSegs"], extended["TCPLossProbes"], extended["TCPTimeouts"], extended["ListenOverflows"]);
    }

    public static TcpCounters operator -(TcpCounters after, TcpCounters before) => new(
        after.Retransmitted - before.Retransmitted, after.LossProbes - before.LossProbes,
        after.Timeouts - before.Timeouts, after.ListenOverflows - before.ListenOverflows);

    public override string ToString() =>
        $"{Retransmitted} segments resent, {LossProbes} of them tail-loss probes; {Timeouts} retransmission timeouts; " +
        $"{ListenOverflows} listen-queue overflows";

    /// <summary>A header line of names and a line of values, both starting with <paramref name="prefix"/>.</summary>
    private static Dictionary<string, long> Counters(string file, string prefix)
    {
        var lines = File.ReadAllLines(file).Where(line => line.StartsWith(prefix)).ToList();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return names.Zip(values).Skip(1).ToDictionary(pair => pair.First, pair => long.Parse(pair.Second));
    }
}
