`default_nettype none
// pipe_extern_csum: the checksum extern, bpf_csum_diff (docs/pipeline.md 5.7, kind 0).
//
// csum(D, s) = x86-64 csum_partial: S = s + the little-endian u32 words of D (zero-padded),
// folded with end-around carry to 32 bits (0 only when S = 0). mode 0 (fold16, Linux >=
// 6.13): both buffers fold16(add(csum(y, seed), ~csum(x, 0))); only y fold16(csum(y,
// seed)); only x fold16(~csum(x, ~seed)); neither fold16(seed). mode 1 (x86_unfolded):
// csum(~x ++ y, seed), lengths multiples of 4. The result is registered.
module pipe_extern_csum (
    input  wire         clk,
    input  wire         rst,
    input  wire         in_valid,
    input  wire         mode,        // 0 fold16, 1 x86_unfolded
    input  wire [511:0] x_bytes,     // "from", zero-padded
    input  wire [6:0]   x_length,
    input  wire         x_present,
    input  wire [511:0] y_bytes,     // "to", zero-padded
    input  wire         y_present,
    input  wire [31:0]  seed,
    output reg          out_valid,
    output reg  [63:0]  out_value
);
    // x86 csum_partial of up to 64 bytes (16 words) and a 32-bit seed
    function [31:0] csum;
        input [511:0] data;
        input [31:0] s;
        reg [36:0] sum;
        reg [32:0] t;
        integer i;
        begin
            sum = s;
            for (i = 0; i < 16; i = i + 1)
                sum = sum + data[32 * i +: 32];
            t = sum[31:0] + sum[36:32];
            csum = t[31:0] + t[32];
        end
    endfunction

    // 32-bit add with end-around carry
    function [31:0] add32;
        input [31:0] p, q;
        reg [32:0] t;
        begin
            t = p + q;
            add32 = t[31:0] + t[32];
        end
    endfunction

    function [15:0] fold16;
        input [31:0] v;
        reg [31:0] t;
        begin
            t = v[15:0] + v[31:16];
            t = t[15:0] + t[31:16];
            fold16 = t[15:0];
        end
    endfunction

    reg [511:0] xinv;
    reg [31:0] r;
    integer i;

    // computed at the clock edge when the unit executes (see pipe_alu)
    always @(posedge clk) begin
        if (in_valid) begin
            // ~x over x's words only (x86_unfolded: the complement of the bytes of x)
            for (i = 0; i < 16; i = i + 1)
                xinv[32 * i +: 32] = (4 * i < x_length) ? ~x_bytes[32 * i +: 32] : 32'd0;
            if (mode)
                r = add32(csum(xinv, seed), csum(y_bytes, 32'd0));
            else if (x_present && y_present)
                r = {16'd0, fold16(add32(csum(y_bytes, seed), ~csum(x_bytes, 32'd0)))};
            else if (y_present)
                r = {16'd0, fold16(csum(y_bytes, seed))};
            else if (x_present)
                r = {16'd0, fold16(~csum(x_bytes, ~seed))};
            else
                r = {16'd0, fold16(seed)};
            out_value <= {32'd0, r};
        end
        if (rst)
            out_valid <= 1'b0;
        else
            out_valid <= in_valid;
    end
endmodule
