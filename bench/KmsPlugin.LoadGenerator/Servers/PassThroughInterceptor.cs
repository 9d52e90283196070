using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>
/// An interceptor shaped like the plugin's ErrorMappingInterceptor (a logger from DI, an awaited continuation inside
/// try/catch) and registered the same way (GrpcServiceOptions.Interceptors.Add&lt;T&gt;(), one singleton instance from DI), doing
/// nothing: <c>noop-server --interceptor</c> uses it to show what that part of the plugin's pipeline costs.
/// </summary>
internal sealed partial class PassThroughInterceptor(ILogger<PassThroughInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (RpcException e)
        {
            LogFailed(logger, e.StatusCode);
            throw;
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "call failed with {Code}")]
    private static partial void LogFailed(ILogger logger, StatusCode code);
}
