global using Xunit;
global using Berth.Runtime.Tests.Support;
