using Berth.Images.Content;

namespace Berth.Images.Store;

/// <summary>
/// Progress of unpacking one layer: <paramref name="Current"/> bytes of the layer blob (as
/// stored: compressed, like docker's "Extracting" bar) read of <paramref name="Total"/>;
/// <paramref name="Done"/> once it is committed as a snapshot.
/// </summary>
public sealed record UnpackProgress(Digest Layer, long Current, long Total, bool Done);
