using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;
using KmsPlugin.Observability;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.Grpc;

/// <summary>
/// Turns every failure of a call into a gRPC status with a message an operator can act on, and logs it with the
/// request uid. Unexpected exceptions become Internal with a generic message: their text could carry anything.
/// Every answered call, whatever its status, is counted and timed (<see cref="PluginMetrics.RecordGrpcRequest"/>) and
/// logged at Debug with its uid, status code, key_id hash and duration: this is the one place that knows the final code.
/// </summary>
public sealed partial class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger, PluginMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        TResponse? response = default;
        try
        {
            response = await continuation(request, context);
            return response;
        }
        catch (KmsPluginException e)
        {
            code = GrpcErrorMapping.ToStatusCode(e.Kind);
            LogRejected(logger, context.Method, Uid(request), code, e.Message);
            throw new RpcException(new Status(code, e.Message));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            var expired = context.Deadline <= DateTime.UtcNow;
            code = expired ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
            LogCancelled(logger, context.Method, Uid(request), expired ? "deadline exceeded" : "cancelled by the client");
            throw new RpcException(expired
                ? new Status(StatusCode.DeadlineExceeded, "the request deadline passed before the plugin finished")
                : new Status(StatusCode.Cancelled, "the client cancelled the request"));
        }
        catch (RpcException e)
        {
            code = e.StatusCode; // raised by the service itself: already a status, passed through unchanged
            throw;
        }
        catch (Exception e)
        {
            code = StatusCode.Internal;
            LogFailed(logger, e, context.Method, Uid(request));
            throw new RpcException(new Status(StatusCode.Internal, $"internal error in the KMS plugin (request uid {Uid(request)}); see the plugin log"));
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(started);
            metrics.RecordGrpcRequest(context.Method, code, elapsed);
            if (logger.IsEnabled(LogLevel.Debug)) // the uid and the key_id hash are computed only when the line is written
            {
                LogCompleted(logger, context.Method, Uid(request), code, KeyIdHashOf(request, response), elapsed.TotalMilliseconds);
            }
        }
    }

    /// <summary>The key_id a call was about, hashed as everywhere in logs: Decrypt's request, Encrypt's and Status's answer.</summary>
    private static string KeyIdHashOf<TRequest, TResponse>(TRequest request, TResponse? response)
    {
        var keyId = request switch
        {
            DecryptRequest decrypt => decrypt.KeyId,
            _ => response switch
            {
                EncryptResponse encrypt => encrypt.KeyId,
                StatusResponse status => status.KeyId,
                _ => "",
            },
        };
        return keyId.Length == 0 ? "-" : KeyIdHash.Of(keyId);
    }

    private static string Uid<TRequest>(TRequest request) => request switch
    {
        EncryptRequest encrypt => Printable(encrypt.Uid),
        DecryptRequest decrypt => Printable(decrypt.Uid),
        _ => "-",
    };

    // uid is caller-chosen text; keep log lines short and single-line.
    private static string Printable(string uid) =>
        uid.Length == 0 ? "-" : new string(uid.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "{Method} uid={Uid} rejected with {Code}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string method, string uid, StatusCode code, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "{Method} uid={Uid} stopped: {Reason}")]
    private static partial void LogCancelled(ILogger logger, string method, string uid, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "{Method} uid={Uid} failed unexpectedly")]
    private static partial void LogFailed(ILogger logger, Exception exception, string method, string uid);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "{Method} uid={Uid} answered {Code} key_id={KeyIdHash} in {ElapsedMs:0.###} ms")]
    private static partial void LogCompleted(ILogger logger, string method, string uid, StatusCode code, string keyIdHash, double elapsedMs);
}
