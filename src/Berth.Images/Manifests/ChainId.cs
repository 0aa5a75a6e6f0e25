using System.Text;
using Berth.Images.Content;

namespace Berth.Images.Manifests;

/// <summary>
/// Layer chain identities (OCI image-spec config.md "ChainID"): the identity of a layer together
/// with everything below it. Snapshots are keyed by them, so a layer stack shared by two images
/// is unpacked once.
/// </summary>
public static class ChainId
{
    /// <summary>ChainID(L0) = DiffID(L0); ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)).</summary>
    public static IReadOnlyList<Digest> Compute(IReadOnlyList<Digest> diffIds)
    {
        var chain = new List<Digest>(diffIds.Count);
        foreach (Digest diffId in diffIds)
            chain.Add(chain.Count == 0 ? diffId : Digest.Compute(Encoding.ASCII.GetBytes(chain[^1].Value + " " + diffId.Value)));
        return chain;
    }
}
