using KmsPlugin.Hosting;
using KmsPlugin.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>
/// Hosts <see cref="NoopKmsService"/> on the plugin's server stack, mirroring kms-plugin/KmsPlugin/Hosting/PluginServer.cs:
/// the slim builder, Kestrel on a Unix socket with HTTP/2 only and no Server header, the same connection middleware
/// (the :authority normalizer for older apiservers), gRPC with the same message limit and no detailed errors, and
/// logging at warning to stderr. With <c>bare</c> the connection middleware is left out, to show what it costs; with
/// <c>interceptor</c> a pass-through interceptor registered like the plugin's is added, to show what that costs.
/// Keep this in step with PluginServer when its Kestrel or gRPC options change.
/// </summary>
internal static class NoopServer
{
    public static WebApplication Build(string socketPath, bool bare, bool interceptor)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.ListenUnixSocket(socketPath, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (!bare)
                {
                    listen.Use(Http2AuthorityNormalizer.Middleware);
                }
            });
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = PluginServer.MaxReceiveMessageBytes;
            grpc.EnableDetailedErrors = false;
            if (interceptor)
            {
                grpc.Interceptors.Add<PassThroughInterceptor>();
            }
        });
        // Like the plugin (PluginServer): one instance of the service and the interceptor serves every call.
        builder.Services.AddSingleton<PassThroughInterceptor>();
        builder.Services.AddSingleton<NoopKmsService>();
        var app = builder.Build();
        app.MapGrpcService<NoopKmsService>();
        return app;
    }
}
