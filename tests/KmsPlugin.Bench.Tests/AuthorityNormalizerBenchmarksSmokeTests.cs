using System.Text;
using KmsPlugin.Benchmarks;
using Xunit.Abstractions;

namespace KmsPlugin.Bench.Tests;

/// <summary>
/// Runs every case of bench/KmsPlugin.Benchmarks/AuthorityNormalizerBenchmarks once, outside BenchmarkDotNet, and
/// checks that it measures what bench/README.md says it does: the frames are whole requests the rewriter accepts, the
/// socket path really is rewritten (in the rewriter and through the middleware's pump), and the connection shuts down.
/// Never timings.
/// </summary>
public sealed class AuthorityNormalizerBenchmarksSmokeTests(ITestOutputHelper output)
{
    public static TheoryData<AuthorityHeader, KmsCall> Cases()
    {
        var cases = new TheoryData<AuthorityHeader, KmsCall>();
        foreach (var authority in Enum.GetValues<AuthorityHeader>())
        {
            foreach (var call in Enum.GetValues<KmsCall>())
            {
                cases.Add(authority, call);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_case_rewrites_the_authority_of_a_whole_grpc_go_request_and_pumps_it_through_the_middleware(AuthorityHeader authority, KmsCall call)
    {
        var benchmark = new AuthorityNormalizerBenchmarks { Authority = authority, Call = call };
        benchmark.Setup();
        try
        {
            var sent = benchmark.RequestBytes.ToArray();
            output.WriteLine($"{call} with {authority}: the client sends {sent.Length} bytes, Kestrel reads {benchmark.RewrittenLength}");
            Assert.InRange(sent.Length, 150, 600); // HEADERS (~90-130 bytes) + DATA (~80 Encrypt, ~300 Decrypt)

            // Twice: the rewriter keeps no half-done state between whole requests.
            Assert.Equal(benchmark.RewrittenLength, benchmark.Process());
            Assert.Equal(benchmark.RewrittenLength, benchmark.Process());
            var rewritten = benchmark.LastProcessed.ToArray();

            byte[] localhostLiteral = [0x41, 0x09, .. "localhost"u8];
            switch (authority)
            {
                case AuthorityHeader.Indexed:
                    Assert.Equal(sent, rewritten); // nothing to rewrite: passed through byte for byte
                    break;
                case AuthorityHeader.LiteralLocalhost:
                    Assert.Equal(sent, rewritten); // rewritten to the very same bytes
                    Assert.True(Contains(rewritten, localhostLiteral));
                    break;
                default:
                    Assert.True(rewritten.Length < sent.Length);
                    Assert.True(Contains(rewritten, localhostLiteral));
                    Assert.False(Contains(rewritten, "kms.sock"u8.ToArray()), Encoding.ASCII.GetString(rewritten)); // in both path forms
                    break;
            }

            Assert.Equal(sent.Length, await benchmark.OnePipe());
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(benchmark.RewrittenLength, await benchmark.Middleware()); // the pumped bytes are the rewritten ones
            }

            Assert.Equal(16 * sent.Length, await benchmark.OnePipeBatch());
            Assert.Equal(16 * benchmark.RewrittenLength, await benchmark.MiddlewareBatch()); // every request of the batch rewritten
        }
        finally
        {
            benchmark.Cleanup(); // returns only once the middleware's pump has stopped
        }
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
