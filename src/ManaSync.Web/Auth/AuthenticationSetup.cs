using ManaSync.Web.Configuration;
using ManaSync.Web.Infrastructure;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ManaSync.Web.Auth;

public static class AuthenticationSetup
{
    /// <summary>Allowed difference between our clock and the token issuer's.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bearer authentication for EdDSA (Ed25519) tokens only. The library defaults are tightened: one
    /// algorithm, the key named by kid and no other, 30 s clock skew, and sub must be present.
    /// </summary>
    public static IServiceCollection AddManaSyncAuthentication(this IServiceCollection services, ServerSettings settings)
    {
        services.AddHttpClient(nameof(SigningKeys), client => client.Timeout = TimeSpan.FromSeconds(5));
        services.AddSingleton<SigningKeys>();
        services.AddAuthorization();
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<SigningKeys>((options, keys) => Configure(options, keys, settings));
        return services;
    }

    private static void Configure(JwtBearerOptions options, SigningKeys keys, ServerSettings settings)
    {
        keys.JwksUrl = settings.JwksUrl;
        options.MapInboundClaims = false;
        options.TokenValidationParameters = new TokenValidationParameters
        {
            ValidAlgorithms = [Ed25519SecurityKey.Algorithm],
            IssuerSigningKeyResolver = (_, _, keyId, _) => keys.Find(keyId) is { } key ? [key] : [],
            TryAllIssuerSigningKeys = false,
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = ClockSkew,
            ValidateIssuer = settings.JwtIssuer is not null,
            ValidIssuer = settings.JwtIssuer,
            ValidateAudience = settings.JwtAudience is not null,
            ValidAudience = settings.JwtAudience,
            NameClaimType = CurrentUser.SubjectClaim,
            CryptoProviderFactory = Ed25519CryptoProviderFactory.Instance,
        };
        options.Events = new JwtBearerEvents
        {
            OnMessageReceived = async context =>
            {
                // The key lookup above is synchronous: make sure the token's key is known before it runs.
                var header = context.Request.Headers.Authorization.ToString();
                if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return;
                context.Token = header["Bearer ".Length..].Trim();
                if (KeyIdOf(context.Token) is { } keyId)
                    await keys.EnsureAsync(keyId, context.HttpContext.RequestAborted);
            },
            OnTokenValidated = context =>
            {
                if (context.Principal is null || !CurrentUser.HasSubject(context.Principal))
                    context.Fail("The token has no subject (sub).");
                return Task.CompletedTask;
            },
            OnChallenge = async context =>
            {
                context.HandleResponse();
                var message = context.AuthenticateFailure switch
                {
                    null => "A bearer token is required.",
                    SecurityTokenExpiredException => "The token has expired.",
                    _ => "The token is not valid.",
                };
                await ApiError.Unauthorized(message).ExecuteAsync(context.HttpContext);
            },
        };
    }

    public static string? KeyIdOf(string token)
    {
        try
        {
            return new JsonWebToken(token).Kid is { Length: > 0 } kid ? kid : null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
