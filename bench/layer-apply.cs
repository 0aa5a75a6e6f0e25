// Applies one layer tar (plain, gzip or zstd) into a directory with Berth's LayerApplier, as an
// image unpack does, and prints the seconds it took. bench/image-pull.sh times it against tar -xzf.
//
//   dotnet run bench/layer-apply.cs -- layer.tar.gz /target/dir
#:project ../src/Berth.Images/Berth.Images.csproj
#:property PublishAot=false
using System.Diagnostics;
using Berth.Images.Layers;

Directory.CreateDirectory(args[1]);
var watch = Stopwatch.StartNew();
using (var input = new FileStream(args[0], FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
{
    LayerApplyResult result = LayerApplier.Apply(input, args[1]);
    Console.Error.WriteLine($"diffID {result.DiffId}, {result.UncompressedSize} bytes uncompressed, {result.Compression}");
}
Console.WriteLine(watch.Elapsed.TotalSeconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture));
