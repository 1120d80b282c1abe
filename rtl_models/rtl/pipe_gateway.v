`default_nettype none
// pipe_gateway: one gateway comparator (docs/pipeline.md 5.1).
//
//   A = bytes [a_offset, a_offset + a_size) of index a, zero-extended   (cmp != pred)
//   B = index b, or imm when b_imm
//   r = cmp(A, B) on w bits (32: low 32 bits; signed compares on w bits); cmp pred: P_in[a]
//   out = (r XOR invert) AND/OR (P_in[pred_in] XOR pred_in_neg)
// The result is registered; pipe_stage replaces predicate out_dst with out_value when
// out_en (the gateway is in use).
module pipe_gateway #(
    parameter PREDICATE_BITS = 64  // P
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire                      in_valid,  // a PHV is at stage entry
    input  wire [127:0]              cfg,       // the gateway word (section 11)
    input  wire [64*64-1:0]          rd,        // the read bus: index i at [64i+63:64i]
    input  wire [PREDICATE_BITS-1:0] pin,       // P_in
    output reg                       out_en,    // gateway in use
    output reg  [5:0]                out_dst,
    output reg                       out_value
);
    wire        valid = cfg[0];
    wire [3:0]  cmp = cfg[4:1];
    wire        w32 = cfg[5];
    wire        invert = cfg[6];
    wire        combine = cfg[7];
    wire [5:0]  a_idx = cfg[13:8];
    wire [2:0]  a_offset = cfg[16:14];
    wire [1:0]  a_size = cfg[18:17];
    wire [5:0]  b_idx = cfg[24:19];
    wire        b_imm = cfg[25];
    wire [5:0]  pred_in = cfg[31:26];
    wire        pred_in_neg = cfg[32];
    wire [5:0]  dst = cfg[38:33];
    wire [63:0] imm = cfg[127:64];

    wire [63:0] p64 = pin;  // zero-extended

    reg [63:0] smask, av, bv, m, a_word, b_word;
    reg signed [63:0] sa, sb;
    reg r, q;

    // computed at the clock edge for a PHV when the gateway is in use (see pipe_alu)
    always @(posedge clk) begin
        if (in_valid && valid) begin
            a_word = rd[64 * a_idx +: 64];
            b_word = b_imm ? imm : rd[64 * b_idx +: 64];
            case (a_size)
                2'd0: smask = 64'h00000000000000ff;
                2'd1: smask = 64'h000000000000ffff;
                2'd2: smask = 64'h00000000ffffffff;
                default: smask = {64{1'b1}};
            endcase
            m = w32 ? 64'h00000000ffffffff : {64{1'b1}};
            av = (a_word >> (8 * a_offset)) & smask & m;
            bv = b_word & m;
            sa = w32 ? {{32{av[31]}}, av[31:0]} : av;
            sb = w32 ? {{32{bv[31]}}, bv[31:0]} : bv;
            case (cmp)
                4'd0: r = av == bv;
                4'd1: r = av != bv;
                4'd2: r = av > bv;
                4'd3: r = av >= bv;
                4'd4: r = av < bv;
                4'd5: r = av <= bv;
                4'd6: r = sa > sb;
                4'd7: r = sa >= sb;
                4'd8: r = sa < sb;
                4'd9: r = sa <= sb;
                4'd10: r = (av & bv) != 0;
                4'd11: r = p64[a_idx];
                default: r = 1'b0;
            endcase
            r = r ^ invert;
            q = p64[pred_in] ^ pred_in_neg;
            out_dst <= dst;
            out_value <= combine ? (r | q) : (r & q);
        end
        if (rst)
            out_en <= 1'b0;
        else
            out_en <= valid;
    end
endmodule
