using System.IO.Compression;
using System.Text;

namespace ManaSync.Testing;

/// <summary>.mana archives made by hand (PROTOCOL §9), for imports the server's own export would never write.</summary>
public static class ManaArchives
{
    /// <summary>A zip of these events.jsonl bytes and this manifest, whether or not they agree.</summary>
    public static byte[] Build(byte[] events, string manifest)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var entry = zip.CreateEntry("events.jsonl").Open()) entry.Write(events);
            using (var entry = zip.CreateEntry("manifest.json").Open()) entry.Write(Encoding.UTF8.GetBytes(manifest));
        }
        return buffer.ToArray();
    }
}
