# ManaSync server image: build with the SDK, run on the ASP.NET runtime as the image's non-root user.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# nuget.config and build/local-packages carry the redirect packages Marten needs (see build/redirects).
COPY . .
RUN dotnet publish src/ManaSync.Web -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
USER app
ENV ASPNETCORE_ENVIRONMENT=Production \
    PORT=3050
EXPOSE 3050
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/${PORT} && printf "GET /health HTTP/1.0\r\n\r\n" >&3 && head -1 <&3 | grep -q " 200 "'
ENTRYPOINT ["dotnet", "ManaSync.Web.dll"]
