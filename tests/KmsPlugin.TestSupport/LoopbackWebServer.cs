using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A Kestrel minimal-API server on 127.0.0.1 with an ephemeral port, over TLS when given a <see cref="LoopbackTls"/>:
/// the host for the tests' wire-level fakes of remote KMS services.
/// </summary>
public sealed class LoopbackWebServer : IAsyncDisposable
{
    private LoopbackWebServer(WebApplication app, Uri baseUri)
    {
        App = app;
        BaseUri = baseUri;
    }

    public WebApplication App { get; }

    /// <summary><c>https://127.0.0.1:PORT/</c> (or http:// without TLS).</summary>
    public Uri BaseUri { get; }

    public static async Task<LoopbackWebServer> StartAsync(Action<WebApplication> map, LoopbackTls? tls = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                if (tls is not null)
                {
                    listen.UseHttps(tls.ServerCertificate);
                }
            });
        });
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        var port = new Uri(address).Port;
        return new LoopbackWebServer(app, new Uri($"{(tls is null ? "http" : "https")}://127.0.0.1:{port}/"));
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
