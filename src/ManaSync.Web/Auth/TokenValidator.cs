using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;

namespace ManaSync.Web.Auth;

/// <summary>
/// Validates a token outside the HTTP authentication pipeline (WebSockets authenticate in-band),
/// with exactly the rules the bearer handler applies.
/// </summary>
public sealed class TokenValidator(SigningKeys keys, IOptionsMonitor<JwtBearerOptions> bearerOptions)
{
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };

    public async Task<ClaimsPrincipal?> ValidateAsync(string token, CancellationToken cancellation)
    {
        if (AuthenticationSetup.KeyIdOf(token) is { } keyId) await keys.EnsureAsync(keyId, cancellation);
        var parameters = bearerOptions.Get(JwtBearerDefaults.AuthenticationScheme).TokenValidationParameters;
        var result = await _handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid) return null;
        var principal = new ClaimsPrincipal(result.ClaimsIdentity);
        return CurrentUser.HasSubject(principal) ? principal : null;
    }
}
