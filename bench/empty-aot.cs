// An empty NativeAOT program: the start-up and exit cost of any .NET process on this machine
// (bench/runtime-floor.sh builds it with `dotnet publish bench/empty-aot.cs`).
#:property PublishAot=true
#:property InvariantGlobalization=true
#:property UseSystemResourceKeys=true
return 0;
